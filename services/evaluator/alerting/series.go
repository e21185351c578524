package alerting

import (
	"fmt"
	"sort"
	"strings"

	evaluatorv1 "github.com/bmaas/bmaas/api/bmaas/evaluator/v1"
)

// series reads one value of a monitoring window. perColumn series take a
// rule's column (or, without one, the largest over the columns).
type series struct {
	// platform series are of no deployment (Deps.Platform): the rule's
	// project's jobs, the cluster's GPUs.
	platform  bool
	perColumn bool
	// drift marks series that need a window's minimum rows to be read.
	drift bool
	value func(w *evaluatorv1.MonitorWindow, column string) (float64, bool)
}

var seriesTable = map[string]series{
	"drift_score": {perColumn: true, drift: true, value: func(w *evaluatorv1.MonitorWindow, col string) (float64, bool) {
		best, ok := 0.0, false
		for _, d := range w.GetDrift() {
			if (col == "" || d.GetColumn() == col) && (!ok || d.GetScore() > best) {
				best, ok = d.GetScore(), true
			}
		}
		return best, ok
	}},
	"drift_share": {drift: true, value: func(w *evaluatorv1.MonitorWindow, _ string) (float64, bool) {
		return w.GetDriftShare(), len(w.GetDrift()) > 0
	}},
	"drifted_columns": {drift: true, value: func(w *evaluatorv1.MonitorWindow, _ string) (float64, bool) {
		n := 0
		for _, d := range w.GetDrift() {
			if d.GetDrifted() {
				n++
			}
		}
		return float64(n), len(w.GetDrift()) > 0
	}},
	"prediction_drift": {drift: true, value: func(w *evaluatorv1.MonitorWindow, _ string) (float64, bool) {
		return w.GetPredictionDrift().GetScore(), w.GetPredictionDrift() != nil
	}},
	"missing_rate": {value: func(w *evaluatorv1.MonitorWindow, _ string) (float64, bool) {
		return w.GetQuality().GetMissingRate(), w.GetRows() > 0
	}},
	"out_of_range_rate": {value: func(w *evaluatorv1.MonitorWindow, _ string) (float64, bool) {
		return w.GetQuality().GetOutOfRangeRate(), w.GetRows() > 0
	}},
	"unseen_category_rate": {value: func(w *evaluatorv1.MonitorWindow, _ string) (float64, bool) {
		return w.GetQuality().GetUnseenCategoryRate(), w.GetRows() > 0
	}},
	"schema_violations": {value: func(w *evaluatorv1.MonitorWindow, _ string) (float64, bool) {
		return float64(w.GetQuality().GetSchemaViolations()), true
	}},
	"accuracy": {value: perf(func(p *evaluatorv1.LivePerformance) float64 { return p.GetAccuracy() })},
	"f1":       {value: perf(func(p *evaluatorv1.LivePerformance) float64 { return p.GetF1() })},
	"auc":      {value: perf(func(p *evaluatorv1.LivePerformance) float64 { return p.GetAuc() })},
	"rmse":     {value: perf(func(p *evaluatorv1.LivePerformance) float64 { return p.GetRmse() })},
	"mae":      {value: perf(func(p *evaluatorv1.LivePerformance) float64 { return p.GetMae() })},
	"requests": {value: func(w *evaluatorv1.MonitorWindow, _ string) (float64, bool) {
		return float64(w.GetRequests()), true
	}},
	"error_rate": {value: func(w *evaluatorv1.MonitorWindow, _ string) (float64, bool) {
		return w.GetErrorRate(), w.GetRequests() > 0
	}},
	"latency_p95_seconds": {value: func(w *evaluatorv1.MonitorWindow, _ string) (float64, bool) {
		return w.GetLatencyP95Seconds(), w.GetRequests() > 0
	}},
	// The platform's: jobs of the rule's project that failed over the
	// last monitoring window, jobs of the rule's project waiting for a
	// place, and the cluster's GPUs held by a task while under 5% busy
	// (GPUs are shared, and the nodes are every identity's to read).
	"job_failures": {platform: true},
	"queued_jobs":  {platform: true},
	"gpu_idle":     {platform: true},
}

// PlatformSeries are the series of no deployment.
func PlatformSeries(name string) bool { return seriesTable[name].platform }

func perf(f func(*evaluatorv1.LivePerformance) float64) func(*evaluatorv1.MonitorWindow, string) (float64, bool) {
	return func(w *evaluatorv1.MonitorWindow, _ string) (float64, bool) {
		return f(w.GetPerformance()), w.GetPerformance().GetLabelledRows() > 0
	}
}

// seriesNames lists the known series, sorted (for error messages).
func seriesNames() string {
	names := make([]string, 0, len(seriesTable))
	for n := range seriesTable {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// holds says whether v compares with the threshold as the rule says.
func holds(c evaluatorv1.Comparison, v, threshold float64) bool {
	switch c {
	case evaluatorv1.Comparison_COMPARISON_GREATER:
		return v > threshold
	case evaluatorv1.Comparison_COMPARISON_GREATER_OR_EQUAL:
		return v >= threshold
	case evaluatorv1.Comparison_COMPARISON_LESS:
		return v < threshold
	case evaluatorv1.Comparison_COMPARISON_LESS_OR_EQUAL:
		return v <= threshold
	}
	return false
}

// Condition renders a rule's condition: drift_score{column="x"} > 0.3.
func Condition(r *evaluatorv1.AlertRule) string {
	s := r.GetSeries()
	if r.GetColumn() != "" {
		s += fmt.Sprintf("{column=%q}", r.GetColumn())
	}
	op := map[evaluatorv1.Comparison]string{evaluatorv1.Comparison_COMPARISON_GREATER: ">",
		evaluatorv1.Comparison_COMPARISON_GREATER_OR_EQUAL: ">=", evaluatorv1.Comparison_COMPARISON_LESS: "<",
		evaluatorv1.Comparison_COMPARISON_LESS_OR_EQUAL: "<="}[r.GetComparison()]
	return fmt.Sprintf("%s %s %g", s, op, r.GetThreshold())
}

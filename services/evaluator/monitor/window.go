package monitor

import (
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	commonv1 "github.com/bmaas/bmaas/api/bmaas/common/v1"
	evaluatorv1 "github.com/bmaas/bmaas/api/bmaas/evaluator/v1"
	"github.com/bmaas/bmaas/pkg/ml/drift"
	"github.com/bmaas/bmaas/pkg/ml/metrics"
)

// window gathers one deployment's records over one window: counters,
// bounded samples of each column for the drift tests, and the labelled
// rows for live performance. Once sealed (the window is over and its
// drift final), the samples are dropped and only feedback changes it.
type window struct {
	start     time.Time
	requests  int64
	errors    int64
	schema    int64
	rows      int64
	latencies samples
	versions  map[int64]int64
	num       map[string]*samples
	cat       map[string]*strSamples
	preds     strSamples
	predVals  samples
	values    int64 // input values seen
	missing   int64
	outRange  int64
	unseen    int64
	perf      labelled
	sealed    bool
	dirty     bool
	result    *evaluatorv1.MonitorWindow
}

func newWindow(start time.Time) *window {
	return &window{start: start, versions: map[int64]int64{}, num: map[string]*samples{}, cat: map[string]*strSamples{}}
}

// reservoir is a uniform sample of at most max values (every value when
// fewer).
type reservoir[T any] struct {
	xs   []T
	seen int
}

func (s *reservoir[T]) add(x T, max int) {
	s.seen++
	if len(s.xs) < max {
		s.xs = append(s.xs, x)
	} else if i := rand.IntN(s.seen); i < max {
		s.xs[i] = x
	}
}

type (
	samples    = reservoir[float64]
	strSamples = reservoir[string]
)

// labelled is the window's predictions that got feedback.
type labelled struct {
	truth, pred []string
	proba       [][]float64
	truthV      []float64
	predV       []float64
}

// add counts one decoded record in the window: its rows and predictions,
// and its input values when they were read (the quality rates are over
// the values read).
func (w *window) add(d *decoded, v *versionInfo, max int) {
	w.rows += int64(d.rows)
	for c, xs := range d.num {
		s := w.num[c]
		if s == nil {
			s = &samples{}
			w.num[c] = s
		}
		st := v.stats[c]
		for _, x := range xs {
			w.values++
			if math.IsNaN(x) {
				w.missing++
				continue
			}
			if st != nil && (x < st.GetMin() || x > st.GetMax()) {
				w.outRange++
			}
			s.add(x, max)
		}
	}
	for c, xs := range d.cat {
		s := w.cat[c]
		if s == nil {
			s = &strSamples{}
			w.cat[c] = s
		}
		st := v.stats[c]
		known := map[string]bool{}
		complete := st != nil && st.GetDistinct() > 0 && st.GetDistinct() <= int64(len(st.GetTopCategories()))
		for _, tc := range st.GetTopCategories() {
			known[tc.GetValue()] = true
		}
		for _, x := range xs {
			w.values++
			if x == "" {
				w.missing++
				continue
			}
			if complete && !known[x] {
				w.unseen++
			}
			s.add(x, max)
		}
	}
	for _, l := range d.labels {
		w.preds.add(l, max)
	}
	for _, x := range d.values {
		w.predVals.add(x, max)
	}
	w.dirty = true
}

// compute sums the window up against the version v (the one that
// answered most of it; nil when unknown).
func (w *window) compute(deployment string, length time.Duration, v *versionInfo, now time.Time) *evaluatorv1.MonitorWindow {
	out := &evaluatorv1.MonitorWindow{Deployment: deployment, StartTime: timestamppb.New(w.start),
		EndTime: timestamppb.New(w.start.Add(length)), Requests: w.requests, Rows: w.rows, Errors: w.errors,
		UpdateTime: timestamppb.New(now), Quality: &evaluatorv1.DataQuality{SchemaViolations: w.schema}}
	if w.sealed && w.result != nil {
		// Drift, quality and traffic are final; only performance moves.
		out = cloneWindow(w.result)
		out.UpdateTime = timestamppb.New(now)
		out.Performance = w.perf.score(v)
		return out
	}
	var best int64
	for ver, n := range w.versions {
		if n > best || (n == best && ver > out.Version) {
			out.Version, best = ver, n
		}
	}
	if w.requests > 0 {
		out.ErrorRate = float64(w.errors) / float64(w.requests)
	}
	lat := slices.Clone(w.latencies.xs)
	slices.Sort(lat)
	out.LatencyP50Seconds, out.LatencyP95Seconds, out.LatencyP99Seconds = quantile(lat, 0.5), quantile(lat, 0.95), quantile(lat, 0.99)
	if w.values > 0 {
		out.Quality.MissingRate = float64(w.missing) / float64(w.values)
		out.Quality.OutOfRangeRate = float64(w.outRange) / float64(w.values)
		out.Quality.UnseenCategoryRate = float64(w.unseen) / float64(w.values)
	}
	if v != nil {
		var drifted int
		for _, c := range v.inputs {
			st := v.stats[c]
			var r drift.Result
			switch {
			case st == nil:
				continue
			case w.num[c] != nil:
				r = drift.Numeric(st, w.num[c].xs)
			case w.cat[c] != nil:
				r = drift.Categorical(st, w.cat[c].xs)
			default:
				continue
			}
			cd := columnDrift(c, r, st.GetMean())
			if cd.Drifted {
				drifted++
			}
			out.Drift = append(out.Drift, cd)
		}
		if len(out.Drift) > 0 {
			out.DriftShare = float64(drifted) / float64(len(out.Drift))
		}
		out.PredictionDrift = w.predictionDrift(v)
	}
	out.Performance = w.perf.score(v)
	return out
}

func columnDrift(c string, r drift.Result, trainMean float64) *evaluatorv1.ColumnDrift {
	return &evaluatorv1.ColumnDrift{Column: c, Kind: r.Kind, Test: r.Test, Score: r.Score, PValue: r.PValue,
		Drifted: r.Drifted, Psi: r.PSI, Count: int64(r.Count), Mean: r.Mean, TrainMean: trainMean}
}

// predictionDrift compares the predictions with the training target:
// predicted labels as categories (a numeric target's histogram read as
// the share of each class), predicted values as numbers.
func (w *window) predictionDrift(v *versionInfo) *evaluatorv1.ColumnDrift {
	t := v.target
	switch {
	case t == nil:
		return nil
	case len(w.preds.xs) > 0 && v.numericTarget(w.preds.xs):
		return columnDrift(t.GetName(), drift.Categorical(classShares(t, v.classes, w.preds.xs), w.preds.xs), t.GetMean())
	case len(w.preds.xs) > 0:
		return columnDrift(t.GetName(), drift.Categorical(t, w.preds.xs), t.GetMean())
	case len(w.predVals.xs) > 0:
		return columnDrift(t.GetName(), drift.Numeric(t, w.predVals.xs), t.GetMean())
	}
	return nil
}

// classShares reads a numeric target's histogram as categories: each
// class label (a number) counts the training values of its bin.
func classShares(t *commonv1.ColumnStats, classes, seen []string) *commonv1.ColumnStats {
	out := &commonv1.ColumnStats{Name: t.GetName(), Kind: commonv1.ValueKind_VALUE_KIND_CATEGORICAL, Count: t.GetCount()}
	labels := slices.Clone(classes)
	for _, s := range seen {
		if !slices.Contains(labels, s) {
			labels = append(labels, s)
		}
	}
	edges, counts := t.GetHistogram().GetEdges(), t.GetHistogram().GetCounts()
	used := map[int]bool{}
	for _, l := range labels {
		x, _ := strconv.ParseFloat(l, 64)
		i, ok := bin(edges, x)
		if !ok || used[i] || i >= len(counts) {
			continue
		}
		used[i] = true
		out.TopCategories = append(out.TopCategories, &commonv1.CategoryCount{Value: l, Count: counts[i]})
	}
	return out
}

// bin is the histogram bin holding x ([e[i], e[i+1]), the last closed).
func bin(edges []float64, x float64) (int, bool) {
	if len(edges) < 2 || x < edges[0] || x > edges[len(edges)-1] {
		return 0, false
	}
	for i := 0; i+1 < len(edges); i++ {
		if x < edges[i+1] {
			return i, true
		}
	}
	return len(edges) - 2, true
}

// score is the live performance of the labelled rows.
func (l *labelled) score(v *versionInfo) *evaluatorv1.LivePerformance {
	p := &evaluatorv1.LivePerformance{}
	if n := len(l.truth); n > 0 {
		p.LabelledRows = int64(n)
		idx := map[string]int{}
		if v != nil {
			idx = v.classIndex()
		}
		class := func(s string) int {
			i, ok := idx[s]
			if !ok {
				i = len(idx)
				idx[s] = i
			}
			return i
		}
		yt, yp := make([]int, n), make([]int, n)
		for i := range n {
			yt[i], yp[i] = class(l.truth[i]), class(l.pred[i])
		}
		k := len(idx)
		p.Accuracy = metrics.Accuracy(yt, yp)
		p.F1 = metrics.PrecisionRecallF1(yt, yp, k, metrics.Macro, 1).F1
		p.Auc = l.auc(yt, k)
	}
	if n := len(l.truthV); n > 0 {
		p.LabelledRows += int64(n)
		p.Rmse, p.Mae = metrics.RMSE(l.truthV, l.predV), metrics.MAE(l.truthV, l.predV)
	}
	return p
}

// auc is the ROC AUC (one-vs-rest for several classes) when every
// labelled row has probabilities over the k classes and both sides of a
// class are present; 0 otherwise.
func (l *labelled) auc(yt []int, k int) float64 {
	flat := make([]float64, 0, len(yt)*k)
	for _, p := range l.proba {
		if len(p) != k {
			return 0
		}
		flat = append(flat, p...)
	}
	var a float64
	if k == 2 {
		score := make([]float64, len(yt))
		for i := range yt {
			score[i] = flat[i*2+1]
		}
		a = metrics.ROCAUC(yt, score)
	} else {
		a = metrics.ROCAUCOvR(yt, flat, k)
	}
	if math.IsNaN(a) || math.IsInf(a, 0) {
		return 0
	}
	return a
}

// quantile of sorted xs (0 when empty), by linear interpolation.
func quantile(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	pos := q * float64(len(xs)-1)
	i := int(pos)
	if i+1 >= len(xs) {
		return xs[len(xs)-1]
	}
	return xs[i] + (xs[i+1]-xs[i])*(pos-float64(i))
}

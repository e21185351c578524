package monitor

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"

	evaluatorv1 "github.com/bmaas/bmaas/api/bmaas/evaluator/v1"
	"github.com/bmaas/bmaas/pkg/apierr"
	"github.com/bmaas/bmaas/pkg/telemetry"
)

// Flush brings every window's result up to date: a window over for one
// more window's length is sealed (its drift final, its samples dropped),
// one past the horizon is forgotten, and, when write is set (the leader),
// each changed result is stored in the bucket and the gauges show each
// deployment's latest window.
func (m *Monitor) Flush(ctx context.Context, write bool) error {
	now := m.now()
	type put struct {
		key string
		w   *evaluatorv1.MonitorWindow
	}
	var puts []put
	replicas := map[string]int32{}
	if write && m.replicas != nil {
		m.mu.Lock()
		deps := make([]string, 0, len(m.deps))
		for d := range m.deps {
			deps = append(deps, d)
		}
		m.mu.Unlock()
		for _, d := range deps {
			if n, err := m.replicas(ctx, d); err == nil {
				replicas[d] = n
			}
		}
	}
	m.mu.Lock()
	for dep, ws := range m.deps {
		for start, w := range ws {
			end := w.start.Add(m.cfg.Window)
			if end.Before(now.Add(-m.cfg.Horizon)) {
				delete(ws, start)
				continue
			}
			if !w.dirty && (w.sealed || end.Add(m.cfg.Window).After(now)) {
				continue
			}
			vi := m.windowVersion(dep, w)
			res := w.compute(dep, m.cfg.Window, vi, now)
			if n, ok := replicas[dep]; ok && !w.sealed {
				res.ReadyReplicas = n
			}
			w.result, w.dirty = res, false
			if !w.sealed && end.Add(m.cfg.Window).Before(now) {
				w.sealed = true
				w.num, w.cat, w.preds, w.predVals, w.latencies = nil, nil, strSamples{}, samples{}, samples{}
			}
			puts = append(puts, put{windowKey(dep, start), proto.Clone(res).(*evaluatorv1.MonitorWindow)})
		}
		if len(ws) == 0 {
			delete(m.deps, dep)
		}
	}
	m.mu.Unlock()
	if !write {
		return nil
	}
	for _, p := range puts {
		data, err := proto.Marshal(p.w)
		if err == nil {
			_, err = m.kv.Put(ctx, p.key, data)
		}
		if err != nil {
			return fmt.Errorf("store window %s: %w", p.key, err)
		}
	}
	m.export()
	return nil
}

// windowVersion is the info of the version that answered most of w, from
// the cache (every version a window counted was looked up when ingested).
func (m *Monitor) windowVersion(dep string, w *window) *versionInfo {
	var best, n int64
	for v, c := range w.versions {
		if c > n || (c == n && v > best) {
			best, n = v, c
		}
	}
	if best == 0 {
		return nil
	}
	return m.versions.cached(dep, best)
}

func windowKey(dep string, start int64) string { return dep + "." + strconv.FormatInt(start, 10) }

// Latest is deployment's most recent window with traffic, as last
// flushed; the current window when it holds minRows rows, else the one
// before when that one is recent. Nil when there is none.
func (m *Monitor) Latest(deployment string, minRows int64) *evaluatorv1.MonitorWindow {
	m.mu.Lock()
	defer m.mu.Unlock()
	cur := m.windowStart(m.now())
	prev := cur - int64(m.cfg.Window/time.Second)
	ws := m.deps[deployment]
	if w := ws[cur]; w != nil && w.result != nil && w.result.Rows >= minRows {
		return w.result
	}
	if w := ws[prev]; w != nil && w.result != nil {
		return w.result
	}
	if w := ws[cur]; w != nil && w.result != nil {
		return w.result
	}
	return nil
}

// List reads deployment's stored windows that end after since, oldest
// first, at most n of the newest (the token, a window start, pages on to
// older ones).
func (m *Monitor) List(ctx context.Context, req *evaluatorv1.ListMonitorWindowsRequest) (*evaluatorv1.ListMonitorWindowsResponse, error) {
	if req.GetDeployment() == "" {
		return nil, apierr.Invalid("deployment", "required")
	}
	n := int(req.GetPageSize())
	switch {
	case n < 0 || n > 1000:
		return nil, apierr.Invalid("page_size", "must be within 0 and 1000, got %d", n)
	case n == 0:
		n = 100
	}
	before := int64(1) << 62
	if t := req.GetPageToken(); t != "" {
		v, err := strconv.ParseInt(t, 10, 64)
		if err != nil || v <= 0 {
			return nil, apierr.Invalid("page_token", "not a token of this list")
		}
		before = v
	}
	since := m.now().Add(-time.Hour)
	if req.GetSince() != nil {
		since = req.GetSince().AsTime()
	}
	select {
	case <-m.started:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	keys, err := m.kv.ListKeysFiltered(ctx, req.GetDeployment()+".*")
	if err != nil {
		return nil, err
	}
	var starts []int64
	for k := range keys.Keys() {
		_, s, _ := strings.Cut(k, ".")
		v, err := strconv.ParseInt(s, 10, 64)
		if err == nil && v < before && time.Unix(v, 0).Add(m.cfg.Window).After(since) {
			starts = append(starts, v)
		}
	}
	sort.Slice(starts, func(i, j int) bool { return starts[i] > starts[j] })
	out := &evaluatorv1.ListMonitorWindowsResponse{}
	if len(starts) > n {
		out.NextPageToken = strconv.FormatInt(starts[n-1], 10)
		starts = starts[:n]
	}
	for i := len(starts) - 1; i >= 0; i-- {
		e, err := m.kv.Get(ctx, windowKey(req.GetDeployment(), starts[i]))
		if err != nil {
			continue // expired between the listing and now
		}
		w := &evaluatorv1.MonitorWindow{}
		if proto.Unmarshal(e.Value(), w) == nil {
			out.Windows = append(out.Windows, w)
		}
	}
	return out, nil
}

// gauges show each deployment's latest window.
type gauges struct {
	drift, share, missing, outRange, accuracy, errRate, p95, requests *prometheus.GaugeVec
	rows                                                              prometheus.Counter
}

func newGauges(reg prometheus.Registerer) *gauges {
	vec := func(name, help string, labels ...string) *prometheus.GaugeVec {
		return prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, append([]string{"deployment"}, labels...))
	}
	g := &gauges{
		drift:    vec("bmaas_monitor_drift_score", "The drift test's statistic of an input column in the deployment's latest window.", "column", "test"),
		share:    vec("bmaas_monitor_drift_share", "The share of input columns that drifted in the deployment's latest window."),
		missing:  vec("bmaas_monitor_missing_rate", "The share of missing input values in the deployment's latest window."),
		outRange: vec("bmaas_monitor_out_of_range_rate", "The share of input values outside the training range in the latest window."),
		accuracy: vec("bmaas_monitor_accuracy", "Live accuracy from feedback in the deployment's latest window with feedback."),
		errRate:  vec("bmaas_monitor_error_rate", "The share of logged requests answered with an error in the latest window."),
		p95:      vec("bmaas_monitor_latency_p95_seconds", "The 95th percentile latency of logged requests in the latest window."),
		requests: vec("bmaas_monitor_requests", "Logged requests in the deployment's latest window."),
		rows: prometheus.NewCounter(prometheus.CounterOpts{Name: "bmaas_monitor_rows_total",
			Help: "Input rows of logged requests the monitor decoded."}),
	}
	if reg != nil {
		for _, v := range []**prometheus.GaugeVec{&g.drift, &g.share, &g.missing, &g.outRange, &g.accuracy, &g.errRate, &g.p95, &g.requests} {
			*v = telemetry.Register(reg, *v)
		}
		g.rows = telemetry.Register(reg, g.rows)
	}
	return g
}

// export sets the gauges from each deployment's latest window.
func (m *Monitor) export() {
	m.mu.Lock()
	deps := make([]string, 0, len(m.deps))
	for d := range m.deps {
		deps = append(deps, d)
	}
	m.mu.Unlock()
	g := m.gauges
	for _, d := range deps {
		w := m.Latest(d, int64(m.cfg.MinRows))
		if w == nil {
			continue
		}
		for _, c := range w.Drift {
			g.drift.WithLabelValues(d, c.Column, c.Test).Set(c.Score)
		}
		g.share.WithLabelValues(d).Set(w.DriftShare)
		g.missing.WithLabelValues(d).Set(w.GetQuality().GetMissingRate())
		g.outRange.WithLabelValues(d).Set(w.GetQuality().GetOutOfRangeRate())
		if w.GetPerformance().GetLabelledRows() > 0 {
			g.accuracy.WithLabelValues(d).Set(w.GetPerformance().GetAccuracy())
		}
		g.errRate.WithLabelValues(d).Set(w.ErrorRate)
		g.p95.WithLabelValues(d).Set(w.LatencyP95Seconds)
		g.requests.WithLabelValues(d).Set(float64(w.Requests))
	}
}

func cloneWindow(w *evaluatorv1.MonitorWindow) *evaluatorv1.MonitorWindow {
	return proto.Clone(w).(*evaluatorv1.MonitorWindow)
}

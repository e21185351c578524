package gateway

import (
	"math"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	gatewayv1 "github.com/bmaas/bmaas/api/bmaas/gateway/v1"
)

// autoscaler decides replica counts from in-flight concurrency as
// Knative's KPA does: the average over the stable window divided by the
// target, or over the shorter panic window when load jumps to
// panic-threshold times the current capacity (then it does not scale down
// until the panic window has passed calmly). A deployment with
// min_replicas 0 goes to zero once no request came for its idle time
// (idleLimit), autoscaled or not, and comes back with the next request.
//
// It runs on the leader only, and counts the load through every gateway:
// its own, plus the latest report of each other gateway (loads), whose
// average concurrency adds to each sample of the windows, whose requests
// in flight (held ones included) keep a replica, and whose last request
// delays scale to zero. A gateway silent for three report intervals no
// longer counts.
type autoscaler struct {
	s     *Service
	state map[string]*scaleState
}

type scaleState struct {
	desired    int
	panicUntil time.Time
	conc       float64
	lastReq    time.Time
}

func newAutoscaler(s *Service) *autoscaler { return &autoscaler{s: s, state: map[string]*scaleState{}} }

func (a *autoscaler) forget(dep string) { delete(a.state, dep) }

// desired returns the replicas d wants now, given ready replicas.
func (a *autoscaler) desired(d *gatewayv1.Deployment, ready int) int {
	st := a.state[d.Name]
	if st == nil {
		st = &scaleState{desired: max(int(d.MinReplicas), 1), lastReq: a.s.now()}
		a.state[d.Name] = st
	}
	cfg := a.s.cfg
	// The load through every gateway: this one's and the others' reports.
	rConc, rInflight, rLast := a.s.loads.sum(d.Name)
	stable, panicAvg, inflight, lastReq := a.s.stats.observe(d.Name, cfg.StableWindow, cfg.PanicWindow, rConc)
	inflight += rInflight
	for _, t := range []time.Time{lastReq, rLast} {
		if t.After(st.lastReq) {
			st.lastReq = t
		}
	}
	st.conc = stable
	lo, hi := int(d.MinReplicas), int(max(d.MaxReplicas, 1))
	now := a.s.now()
	idle := a.idleLimit(d)
	toZero := idle > 0 && inflight == 0 && now.Sub(st.lastReq) >= idle
	if !d.Autoscaling {
		st.desired = max(lo, 1)
		if toZero {
			st.desired = 0
		}
		return st.desired
	}
	target := float64(max(d.TargetConcurrency, 1))
	want := int(math.Ceil(stable / target))
	if p := int(math.Ceil(panicAvg / target)); float64(p) >= cfg.PanicThreshold*float64(max(ready, 1)) && p > want {
		st.panicUntil = now.Add(cfg.PanicWindow)
		want = p
	}
	if now.Before(st.panicUntil) {
		want = max(want, st.desired)
	}
	switch {
	case toZero:
		want = 0
	case want == 0:
		want = 1 // not idle long enough (or never goes to zero)
	}
	st.desired = min(max(want, lo), hi)
	return st.desired
}

// idleLimit is how long d must be idle to scale to zero; 0: never (its
// min_replicas is above 0). A deployment stored before the gateway filled
// the idle time in gets the gateway's default.
func (a *autoscaler) idleLimit(d *gatewayv1.Deployment) time.Duration {
	switch {
	case d.MinReplicas > 0:
		return 0
	case d.ScaleToZeroSeconds > 0:
		return time.Duration(d.ScaleToZeroSeconds) * time.Second
	}
	return a.s.cfg.ScaleToZeroAfter
}

func (a *autoscaler) lastConcurrency(dep string) float64 {
	if st := a.state[dep]; st != nil {
		return math.Round(st.conc*100) / 100
	}
	return 0
}

func (a *autoscaler) lastRequest(dep string) *timestamppb.Timestamp {
	if st := a.state[dep]; st != nil && !st.lastReq.IsZero() {
		return timestamppb.New(st.lastReq.Truncate(time.Second))
	}
	return nil
}

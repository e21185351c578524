package gateway

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	gatewayv1 "github.com/bmaas/bmaas/api/bmaas/gateway/v1"
)

// LoadSubject carries the gateways' load reports (gatewayv1.GatewayLoad)
// over NATS core publish: a lost report is superseded by the next one,
// so nothing is stored.
const LoadSubject = "bmaas.gateway.load"

// staleReports is how many report intervals a gateway's latest report
// counts for; past that the gateway is taken to be gone.
const staleReports = 3

// loads holds the latest load report of every other gateway, for the
// leader's autoscaler. A report is whole: a deployment it does not list
// had no traffic through that gateway.
type loads struct {
	self     string
	now      func() time.Time
	interval time.Duration // this gateway's report interval
	mu       sync.Mutex
	by       map[string]*remoteLoad
}

type remoteLoad struct {
	at     time.Time // received, on this gateway's clock
	maxAge time.Duration
	deps   map[string]*gatewayv1.DeploymentLoad
	tokens map[string]int64 // language-model tokens by project, last minute
}

func newLoads(self string, interval time.Duration, now func() time.Time) *loads {
	return &loads{self: self, now: now, interval: interval, by: map[string]*remoteLoad{}}
}

// add keeps r as its gateway's latest report, unless r is this gateway's
// own. It returns true when r shows requests in flight for a deployment
// that had none in that gateway's previous report: a request may be held
// there for a replica, so the leader should reconcile now.
func (l *loads) add(r *gatewayv1.GatewayLoad) (woke bool) {
	if r.GetGateway() == "" || r.GetGateway() == l.self {
		return false
	}
	rl := &remoteLoad{at: l.now(), maxAge: staleReports * max(l.interval, r.GetPeriod().AsDuration()),
		deps: make(map[string]*gatewayv1.DeploymentLoad, len(r.GetDeployments()))}
	for _, d := range r.GetDeployments() {
		rl.deps[d.GetDeployment()] = d
	}
	if len(r.GetTokens()) > 0 {
		rl.tokens = make(map[string]int64, len(r.GetTokens()))
		for _, pt := range r.GetTokens() {
			rl.tokens[pt.GetProject()] = pt.GetTokens()
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	prev := l.by[r.GetGateway()]
	l.by[r.GetGateway()] = rl
	for name, d := range rl.deps {
		if d.GetInFlight() > 0 && (prev == nil || l.stale(prev, rl.at) || prev.deps[name].GetInFlight() == 0) {
			woke = true
		}
	}
	return woke
}

func (l *loads) stale(rl *remoteLoad, now time.Time) bool { return now.Sub(rl.at) > rl.maxAge }

// sum returns dep's load through the other gateways: the sum of their
// latest reports' average concurrency and requests in flight, and the
// latest of their last requests. Reports past their age are dropped.
func (l *loads) sum(dep string) (conc float64, inflight int64, lastReq time.Time) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	for gw, rl := range l.by {
		if l.stale(rl, now) {
			delete(l.by, gw)
			continue
		}
		d := rl.deps[dep]
		if d == nil {
			continue
		}
		conc += d.GetConcurrency()
		inflight += d.GetInFlight()
		if t := d.GetLastRequestTime(); t != nil && t.AsTime().After(lastReq) {
			lastReq = t.AsTime()
		}
	}
	return conc, inflight, lastReq
}

// tokens is the language-model tokens project used through the other
// gateways over their last minute, by their latest reports.
func (l *loads) tokens(project string) int64 {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	var n int64
	for _, rl := range l.by {
		if !l.stale(rl, now) {
			n += rl.tokens[project]
		}
	}
	return n
}

// subscribe keeps the other gateways' reports until ctx is done; wake is
// called when add returns true.
func (l *loads) subscribe(ctx context.Context, nc *nats.Conn, log *slog.Logger, wake func()) error {
	sub, err := nc.Subscribe(LoadSubject, func(m *nats.Msg) {
		var r gatewayv1.GatewayLoad
		if err := proto.Unmarshal(m.Data, &r); err != nil {
			log.Warn("bad load report", "err", err)
			return
		}
		if l.add(&r) {
			wake()
		}
	})
	if err != nil {
		return err
	}
	go func() {
		<-ctx.Done()
		_ = sub.Unsubscribe()
	}()
	return nil
}

// reportLoad publishes this gateway's load every interval until ctx is
// done. It publishes also when no deployment had traffic, so that the
// leader's copy of its previous report is replaced at once.
func (s *Service) reportLoad(ctx context.Context) {
	t := time.NewTicker(s.cfg.LoadReportInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := s.publishLoad(); err != nil {
			s.log.Warn("publish load report", "err", err)
		}
	}
}

// publishLoad closes a report period and publishes it.
func (s *Service) publishLoad() error {
	r := &gatewayv1.GatewayLoad{Gateway: s.deps.Addr, Period: durationpb.New(s.cfg.LoadReportInterval),
		Deployments: s.stats.report(), Tokens: s.tokens.report()}
	r.Time = timestamppb.New(s.now())
	b, err := proto.Marshal(r)
	if err != nil {
		return err
	}
	return s.deps.NATS.Publish(LoadSubject, b)
}

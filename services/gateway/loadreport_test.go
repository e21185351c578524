package gateway

import (
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	gatewayv1 "github.com/bmaas/bmaas/api/bmaas/gateway/v1"
)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// scaleService is the part of a Service the autoscaler and the load
// reports use: gateway "gw-a", reporting every second.
func scaleService(clk *fakeClock) *Service {
	cfg := DefaultConfig()
	return &Service{cfg: cfg, deps: Deps{Addr: "gw-a"}, log: slog.New(slog.DiscardHandler), now: clk.Now,
		stats: newStats(clk.Now), loads: newLoads("gw-a", cfg.LoadReportInterval, clk.Now)}
}

func loadReport(gw string, period time.Duration, deps ...*gatewayv1.DeploymentLoad) *gatewayv1.GatewayLoad {
	return &gatewayv1.GatewayLoad{Gateway: gw, Period: durationpb.New(period), Deployments: deps}
}

func autoscaled(minR, maxR int32) *gatewayv1.Deployment {
	return &gatewayv1.Deployment{Name: "dep", MinReplicas: minR, MaxReplicas: maxR, TargetConcurrency: 1,
		Autoscaling: true, ScaleToZeroSeconds: 1}
}

// Another gateway's reported concurrency adds to this one's in the
// windows, and shows in the deployment's status figure.
func TestAutoscalerAddsRemoteLoad(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		remote float64
		want   int
	}{
		{"own load only", 0, 1},
		{"own plus remote", 3, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			clk := newFakeClock()
			s := scaleService(clk)
			a := newAutoscaler(s)
			s.stats.begin("dep") // one request in flight here throughout
			if tc.remote > 0 {
				s.loads.add(loadReport("gw-b", time.Second, &gatewayv1.DeploymentLoad{Deployment: "dep", Concurrency: tc.remote}))
			}
			clk.advance(time.Second)
			require.Equal(t, tc.want, a.desired(autoscaled(0, 10), 4))
			require.InDelta(t, float64(tc.want), a.lastConcurrency("dep"), 0.01)
		})
	}
}

// A gateway whose latest report is older than three of its periods is
// gone: its load no longer counts.
func TestLoadsDropStaleGateway(t *testing.T) {
	t.Parallel()
	clk := newFakeClock()
	l := newLoads("gw-a", time.Second, clk.Now)
	l.add(loadReport("gw-b", time.Second, &gatewayv1.DeploymentLoad{Deployment: "dep", Concurrency: 2, InFlight: 1}))
	l.add(loadReport("gw-c", 5*time.Second, &gatewayv1.DeploymentLoad{Deployment: "dep", Concurrency: 3, InFlight: 2}))
	conc, inflight, _ := l.sum("dep")
	require.InDelta(t, 5.0, conc, 1e-9)
	require.EqualValues(t, 3, inflight)

	clk.advance(3*time.Second + time.Millisecond) // gw-b is stale; gw-c reports every 5s
	conc, inflight, _ = l.sum("dep")
	require.InDelta(t, 3.0, conc, 1e-9)
	require.EqualValues(t, 2, inflight)
	require.NotContains(t, l.by, "gw-b")

	clk.advance(15 * time.Second)
	conc, inflight, _ = l.sum("dep")
	require.Zero(t, conc)
	require.Zero(t, inflight)
	require.Empty(t, l.by)
}

// A newer report replaces its gateway's previous one whole: a deployment
// it no longer lists had no traffic there.
func TestLoadsLatestReportReplaces(t *testing.T) {
	t.Parallel()
	clk := newFakeClock()
	l := newLoads("gw-a", time.Second, clk.Now)
	l.add(loadReport("gw-b", time.Second, &gatewayv1.DeploymentLoad{Deployment: "dep", Concurrency: 2}))
	l.add(loadReport("gw-b", time.Second))
	conc, _, _ := l.sum("dep")
	require.Zero(t, conc)
}

// This gateway's own reports come back on the subject; they must not
// count twice.
func TestLoadsIgnoreOwnReport(t *testing.T) {
	t.Parallel()
	clk := newFakeClock()
	s := scaleService(clk)
	a := newAutoscaler(s)
	require.False(t, s.loads.add(loadReport("gw-a", time.Second, &gatewayv1.DeploymentLoad{Deployment: "dep", Concurrency: 5, InFlight: 5})))
	conc, inflight, _ := s.loads.sum("dep")
	require.Zero(t, conc)
	require.Zero(t, inflight)
	clk.advance(time.Second)
	require.Equal(t, 1, a.desired(autoscaled(1, 10), 1))
}

// A request held at another gateway needs a replica: the deployment
// scales from zero, and the report wakes the leader.
func TestRemoteInFlightScalesFromZero(t *testing.T) {
	t.Parallel()
	clk := newFakeClock()
	s := scaleService(clk)
	a := newAutoscaler(s)
	d := autoscaled(0, 3)
	a.desired(d, 1)
	clk.advance(5 * time.Second)
	require.Equal(t, 0, a.desired(d, 1), "idle past scale_to_zero_seconds")

	held := &gatewayv1.DeploymentLoad{Deployment: "dep", InFlight: 1, LastRequestTime: timestamppb.New(clk.Now())}
	require.True(t, s.loads.add(loadReport("gw-b", time.Second, held)), "first held request wakes the leader")
	require.False(t, s.loads.add(loadReport("gw-b", time.Second, held)), "still held: no new wake")
	clk.advance(100 * time.Millisecond)
	require.Equal(t, 1, a.desired(d, 0))
}

// Another gateway's last request delays scale to zero until the
// deployment has been idle everywhere for scale_to_zero_seconds.
func TestRemoteLastRequestDelaysScaleToZero(t *testing.T) {
	t.Parallel()
	clk := newFakeClock()
	s := scaleService(clk)
	a := newAutoscaler(s)
	d := autoscaled(0, 3)
	a.desired(d, 1)
	clk.advance(5 * time.Second)
	s.loads.add(loadReport("gw-b", time.Second,
		&gatewayv1.DeploymentLoad{Deployment: "dep", LastRequestTime: timestamppb.New(clk.Now().Add(-500 * time.Millisecond))}))
	require.Equal(t, 1, a.desired(d, 1), "a request 0.5s ago at gw-b")
	require.Equal(t, clk.Now().Add(-500*time.Millisecond).Truncate(time.Second), a.lastRequest("dep").AsTime())
	clk.advance(2 * time.Second)
	require.Equal(t, 0, a.desired(d, 1), "idle 2.5s everywhere")
}

// report cuts the load into periods: the average concurrency since the
// previous report, the requests in flight now, the last request; an idle
// deployment is left out.
func TestStatsReport(t *testing.T) {
	t.Parallel()
	clk := newFakeClock()
	st := newStats(clk.Now)
	d1 := st.begin("dep")
	d2 := st.begin("dep")
	clk.advance(time.Second)
	st.end(d1)
	clk.advance(time.Second)
	r := st.report()
	require.Len(t, r, 1)
	require.Equal(t, "dep", r[0].Deployment)
	require.InDelta(t, 1.5, r[0].Concurrency, 1e-9) // 2 for 1s, then 1 for 1s
	require.EqualValues(t, 1, r[0].InFlight)
	require.Equal(t, clk.Now().Add(-time.Second), r[0].LastRequestTime.AsTime())

	clk.advance(500 * time.Millisecond)
	st.end(d2)
	clk.advance(500 * time.Millisecond)
	r = st.report()
	require.Len(t, r, 1, "traffic since the last report")
	require.InDelta(t, 0.5, r[0].Concurrency, 1e-9)
	require.Zero(t, r[0].InFlight)

	clk.advance(time.Second)
	require.Empty(t, st.report(), "idle over the period")

	// The autoscaler's own sampling is independent of the reports.
	stable, _, _, _ := st.observe("dep", time.Minute, 6*time.Second, 0)
	require.InDelta(t, (2+1+0.5)/4.0, stable, 1e-9)
}

func TestConfigLoadReportInterval(t *testing.T) {
	t.Parallel()
	cfg := DefaultConfig()
	require.Equal(t, time.Second, cfg.LoadReportInterval)
	require.NoError(t, cfg.Validate())
	cfg.LoadReportInterval = 0
	require.ErrorContains(t, cfg.Validate(), "gateway.load-report-interval")
}

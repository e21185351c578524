package gateway

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	gatewayv1 "github.com/bmaas/bmaas/api/bmaas/gateway/v1"
)

// min_replicas 0 is what scaling to zero takes: an idle deployment goes
// to zero after its idle time, the gateway's default when it names none
// (as `deploy scale --min 0` leaves it), with or without autoscaling.
func TestMinZeroScalesToZeroWhenIdle(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		d    *gatewayv1.Deployment
		idle time.Duration
	}{
		{"autoscaled, default idle time", &gatewayv1.Deployment{Name: "dep", MaxReplicas: 3, Autoscaling: true}, DefaultConfig().ScaleToZeroAfter},
		{"fixed size, default idle time", &gatewayv1.Deployment{Name: "dep", MaxReplicas: 1}, DefaultConfig().ScaleToZeroAfter},
		{"autoscaled, 10 s", &gatewayv1.Deployment{Name: "dep", MaxReplicas: 3, Autoscaling: true, ScaleToZeroSeconds: 10}, 10 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			clk := newFakeClock()
			s := scaleService(clk)
			a := newAutoscaler(s)
			require.Equal(t, 1, a.desired(tc.d, 0), "a new deployment starts a replica")
			clk.advance(tc.idle - time.Second)
			require.Equal(t, 1, a.desired(tc.d, 1), "not idle long enough")
			clk.advance(2 * time.Second)
			require.Equal(t, 0, a.desired(tc.d, 1), "idle past its time")
			require.Equal(t, tc.idle, a.idleLimit(tc.d))

			// A request brings it back, and keeps it while it is in flight.
			r := s.stats.begin("dep")
			require.Equal(t, 1, a.desired(tc.d, 0))
			clk.advance(tc.idle + time.Second)
			require.Equal(t, 1, a.desired(tc.d, 1), "a request in flight keeps a replica")
			s.stats.end(r)
		})
	}
}

// With min_replicas above 0 nothing scales to zero, and a stored idle
// time is dropped: it applies only to min_replicas 0. With min_replicas
// 0 the gateway's default fills an absent idle time.
func TestNormalizeScaleToZero(t *testing.T) {
	t.Parallel()
	s := &Service{cfg: DefaultConfig()}
	d := &gatewayv1.Deployment{Model: "iris@1", MinReplicas: 1, ScaleToZeroSeconds: 30}
	require.NoError(t, s.normalize(t.Context(), d))
	require.Zero(t, d.ScaleToZeroSeconds)

	d = &gatewayv1.Deployment{Model: "iris@1", MinReplicas: 0}
	require.NoError(t, s.normalize(t.Context(), d))
	require.Equal(t, int64(DefaultConfig().ScaleToZeroAfter/time.Second), d.ScaleToZeroSeconds)

	d = &gatewayv1.Deployment{Model: "iris@1", MinReplicas: 0, ScaleToZeroSeconds: 5}
	require.NoError(t, s.normalize(t.Context(), d))
	require.Equal(t, int64(5), d.ScaleToZeroSeconds)

	clk := newFakeClock()
	ss := scaleService(clk)
	a := newAutoscaler(ss)
	fixed := &gatewayv1.Deployment{Name: "dep", MinReplicas: 1, MaxReplicas: 1, ScaleToZeroSeconds: 1}
	a.desired(fixed, 0)
	clk.advance(time.Hour)
	require.Equal(t, 1, a.desired(fixed, 1))
}

//go:build integration

package gateway

import (
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bmaas/bmaas/internal/testenv"
)

// Reports travel over a real NATS: the receiving gateway sums them, and
// a gateway never counts its own.
func TestLoadReportsOverNATS(t *testing.T) {
	t.Parallel()
	nc := testenv.NATSConn(t)
	clk := newFakeClock()
	pub := scaleService(clk) // gw-a
	pub.deps.NATS = nc
	other := scaleService(clk)
	other.deps.Addr, other.deps.NATS = "gw-c", nc

	woke := make(chan struct{}, 10)
	recv := newLoads("gw-b", time.Second, clk.Now)
	require.NoError(t, recv.subscribe(t.Context(), nc, slog.New(slog.DiscardHandler), func() { woke <- struct{}{} }))
	self := newLoads("gw-a", time.Second, clk.Now)
	require.NoError(t, self.subscribe(t.Context(), nc, slog.New(slog.DiscardHandler), func() {}))
	require.NoError(t, nc.Flush())

	pub.stats.begin("dep")
	clk.advance(time.Second)
	require.NoError(t, pub.publishLoad())
	require.Eventually(t, func() bool {
		conc, inflight, _ := recv.sum("dep")
		return inflight == 1 && conc > 0.99
	}, 10*time.Second, 10*time.Millisecond)
	require.Len(t, woke, 1)

	// NATS keeps one publisher's order: once gw-c's report is in, gw-a's
	// own (published first) has been seen and ignored.
	require.NoError(t, other.publishLoad())
	require.Eventually(t, func() bool {
		self.mu.Lock()
		defer self.mu.Unlock()
		return self.by["gw-c"] != nil
	}, 10*time.Second, 10*time.Millisecond)
	require.NotContains(t, self.by, "gw-a")
}

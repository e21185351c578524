//go:build integration

package app

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bmaas/bmaas/internal/embedded"
)

// TestADyingEmbeddedEtcdEndsItsModulesRun: the etcd module's Run
// returns an error when the embedded member stops under it (which stops
// the process, TestFailingRunStopsEveryModule), and nil on the
// process's own stop.
func TestADyingEmbeddedEtcdEndsItsModulesRun(t *testing.T) {
	t.Parallel()
	start := func() *App {
		e, err := embedded.StartEtcd(t.Context(), embedded.EtcdConfig{Dir: t.TempDir(), Fast: true})
		require.NoError(t, err)
		t.Cleanup(e.Close)
		a := &App{log: slog.New(slog.DiscardHandler)}
		a.w.etcd = e
		return a
	}
	a := start()
	done := make(chan error, 1)
	go func() { done <- a.runEtcd(t.Context()) }()
	a.w.etcd.Close()
	select {
	case err := <-done:
		require.ErrorContains(t, err, "embedded etcd")
	case <-time.After(10 * time.Second):
		t.Fatal("the module's Run did not end")
	}

	a = start()
	ctx, cancel := context.WithCancel(t.Context())
	go func() { done <- a.runEtcd(ctx) }()
	cancel()
	require.NoError(t, <-done)
}

package app

import (
	"context"
	"flag"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestRunEndsWhileAStartIgnoresItsContext: a module whose start blocks
// without honouring its context (as embed.StartEtcd did on a locked
// database) does not keep the process from stopping.
func TestRunEndsWhileAStartIgnoresItsContext(t *testing.T) {
	t.Parallel()
	started, stopped := make(chan struct{}), make(chan struct{})
	release := make(chan struct{})
	defer close(release)
	a := &App{cfg: Config{DataDir: t.TempDir(), Embedded: true}, log: slog.New(slog.DiscardHandler),
		readyCh: make(chan struct{}), order: []string{"first", "stuck"}, modules: map[string]*module{
			"first": {name: "first", start: func(context.Context) error { return nil },
				stop: func(context.Context) { close(stopped) }},
			"stuck": {name: "stuck", start: func(context.Context) error { close(started); <-release; return nil }},
		}}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	<-started
	cancel()
	select {
	case err := <-done:
		require.ErrorIs(t, err, context.Canceled)
		require.ErrorContains(t, err, "start stuck")
	case <-time.After(startGrace + shutdownBound):
		t.Fatal("Run did not return")
	}
	select {
	case <-stopped:
	default:
		t.Fatal("the started module was not stopped")
	}
}

// TestDataDirIsMadeAbsolute: every path handed to a task or to etcd's
// sockets is absolute, whatever --data-dir said (make run passes
// ./bmaas-data).
func TestDataDirIsMadeAbsolute(t *testing.T) {
	t.Chdir(t.TempDir())
	var cfg Config
	fs := flag.NewFlagSet("", flag.ContinueOnError)
	cfg.RegisterFlags(fs)
	cfg.Embedded, cfg.Targets = true, AllTargets
	require.Equal(t, "./bmaas-data", cfg.DataDir)
	a, err := New(cfg, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	require.True(t, filepath.IsAbs(a.cfg.DataDir), a.cfg.DataDir)
	wd, err := os.Getwd()
	require.NoError(t, err)
	require.Equal(t, filepath.Join(wd, "bmaas-data"), a.cfg.DataDir)
}

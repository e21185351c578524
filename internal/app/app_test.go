package app

import (
	"context"
	"errors"
	"flag"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// testApp is an App of the given modules, started in the given order.
func testApp(t *testing.T, order []string, mods map[string]Service) *App {
	t.Helper()
	a := &App{cfg: Config{DataDir: t.TempDir(), Embedded: true, Shutdown: ShutdownConfig{Timeout: 4500 * time.Millisecond,
		HTTPTimeout: 2 * time.Second}}, log: slog.New(slog.DiscardHandler), readyCh: make(chan struct{}), order: order,
		modules: map[string]*module{}}
	for _, name := range order {
		a.modules[name] = &module{name: name, svc: mods[name]}
	}
	return a
}

// TestRunEndsWhileAStartIgnoresItsContext: a module whose start blocks
// without honouring its context (as embed.StartEtcd did on a locked
// database) does not keep the process from stopping.
func TestRunEndsWhileAStartIgnoresItsContext(t *testing.T) {
	t.Parallel()
	started, stopped := make(chan struct{}), make(chan struct{})
	release := make(chan struct{})
	defer close(release)
	a := testApp(t, []string{"first", "stuck"}, map[string]Service{
		"first": &hooks{stop: func(context.Context) { close(stopped) }},
		"stuck": &hooks{start: func(context.Context) error { close(started); <-release; return nil }},
	})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	<-started
	cancel()
	select {
	case err := <-done:
		require.ErrorIs(t, err, context.Canceled)
		require.ErrorContains(t, err, "start stuck")
	case <-time.After(startGrace + a.cfg.Shutdown.Timeout):
		t.Fatal("Run did not return")
	}
	select {
	case <-stopped:
	default:
		t.Fatal("the started module was not stopped")
	}
}

// recorder records the lifecycle calls of modules, in order.
type recorder struct {
	mu    sync.Mutex
	calls []string
}

func (r *recorder) add(s string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, s)
}

func (r *recorder) get() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.calls)
}

// recorded is a module that records its calls; its Run records its end
// when its context ends.
func (r *recorder) module(name string) Service {
	return &hooks{
		start: func(context.Context) error { r.add("start " + name); return nil },
		run:   func(ctx context.Context) error { <-ctx.Done(); r.add("ran " + name); return nil },
		drain: func(context.Context) { r.add("drain " + name) },
		stop:  func(context.Context) { r.add("stop " + name) },
	}
}

// runUntilReady runs a until it is ready, then stops it and returns
// Run's error.
func runUntilReady(t *testing.T, a *App) error {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	select {
	case <-a.Ready():
	case err := <-done:
		cancel()
		return err
	}
	cancel()
	return <-done
}

// TestModulesStopInReverseOrderAfterDraining: modules start in order;
// on the stop every module drains first, in reverse order, while all
// still run; then, again in reverse order, each one's Run ends before it
// stops and before the next module's Run ends.
func TestModulesStopInReverseOrderAfterDraining(t *testing.T) {
	t.Parallel()
	r := &recorder{}
	order := []string{"etcd", "server", "registry", "membership"}
	mods := map[string]Service{}
	for _, n := range order {
		mods[n] = r.module(n)
	}
	a := testApp(t, order, mods)
	require.NoError(t, runUntilReady(t, a))
	require.Equal(t, []string{
		"start etcd", "start server", "start registry", "start membership",
		"drain membership", "drain registry", "drain server", "drain etcd",
		"ran membership", "stop membership", "ran registry", "stop registry",
		"ran server", "stop server", "ran etcd", "stop etcd",
	}, r.get())
}

// TestFailingRunStopsEveryModule: a module's Run that fails stops the
// process with its error, and every module is stopped.
func TestFailingRunStopsEveryModule(t *testing.T) {
	t.Parallel()
	r := &recorder{}
	died := errors.New("disk full")
	server := r.module("server").(*hooks)
	up := make(chan struct{})
	start := server.start
	server.start = func(ctx context.Context) error { defer close(up); return start(ctx) }
	a := testApp(t, []string{"etcd", "server"}, map[string]Service{
		"etcd":   &hooks{run: func(context.Context) error { <-up; return died }, stop: func(context.Context) { r.add("stop etcd") }},
		"server": server,
	})
	err := a.Run(t.Context())
	require.ErrorIs(t, err, died)
	require.ErrorContains(t, err, "module etcd")
	require.Equal(t, []string{"start server", "drain server", "ran server", "stop server", "stop etcd"}, r.get())
}

// TestStopIsBounded: a drain and a Run that ignore their contexts do not
// keep Run from returning after the shutdown bound; the modules after
// them still stop.
func TestStopIsBounded(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	defer close(release)
	stopped := make(chan struct{})
	a := testApp(t, []string{"first", "stuck"}, map[string]Service{
		"first": &hooks{stop: func(context.Context) { close(stopped) }},
		"stuck": &hooks{
			run: func(context.Context) error { <-release; return nil },
			drain: func(ctx context.Context) {
				select {
				case <-release:
				case <-ctx.Done():
				}
			}},
	})
	a.cfg.Shutdown.Timeout = 200 * time.Millisecond
	start := time.Now()
	require.NoError(t, runUntilReady(t, a))
	require.Less(t, time.Since(start), a.cfg.Shutdown.Timeout+time.Second)
	<-stopped
}

// graceful is a module whose drain asks for more time than the default.
type graceful struct {
	hooks
	extra time.Duration
}

func (g *graceful) ExtraGrace() time.Duration { return g.extra }

// TestShutdownBoundGrowsWithATaskGrace: a module that reports a longer
// grace (the agent running a job with a long termination grace)
// extends the bound by it.
func TestShutdownBoundGrowsWithATaskGrace(t *testing.T) {
	t.Parallel()
	a := testApp(t, []string{"agent"}, map[string]Service{"agent": &built{svc: &graceful{extra: 3 * time.Second}}})
	require.Equal(t, 4500*time.Millisecond, a.ShutdownBound(), "not running: the configured bound")
	a.running = []string{"agent"}
	require.Equal(t, 7500*time.Millisecond, a.ShutdownBound())
}

// TestShutdownFlagsDefaultToTheFormerTimings: the timings are flags
// whose defaults are the constants they replaced, and are checked.
func TestShutdownFlagsDefaultToTheFormerTimings(t *testing.T) {
	t.Parallel()
	var c ShutdownConfig
	fs := flag.NewFlagSet("", flag.ContinueOnError)
	c.RegisterFlags(fs)
	require.Equal(t, ShutdownConfig{Timeout: 4500 * time.Millisecond, HTTPTimeout: 2 * time.Second}, c)
	require.NoError(t, c.Validate())
	require.NoError(t, fs.Parse([]string{"--shutdown.drain-delay=5s"}))
	require.ErrorContains(t, c.Validate(), "shutdown.drain-delay")
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

// TestRateLimitFlags: the limits are flags, off by default, and a bad
// value is refused naming its flag.
func TestRateLimitFlags(t *testing.T) {
	t.Parallel()
	parse := func(args ...string) (*Config, error) {
		c := &Config{}
		fs := flag.NewFlagSet("", flag.ContinueOnError)
		c.RegisterFlags(fs)
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		c.Embedded, c.Targets = true, AllTargets
		return c, c.Validate()
	}
	c, err := parse()
	require.NoError(t, err)
	require.Zero(t, c.RateLimit, "no limit unless asked")
	c, err = parse("--auth.rate-limit=50", "--auth.rate-burst=100")
	require.NoError(t, err)
	require.Equal(t, 50.0, c.RateLimit)
	require.Equal(t, 100, c.RateBurst)
	_, err = parse("--auth.rate-limit=-1")
	require.ErrorContains(t, err, "auth.rate-limit")
	_, err = parse("--auth.rate-burst=-5")
	require.ErrorContains(t, err, "auth.rate-burst")
}

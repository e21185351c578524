package app

import (
	"context"
	"flag"
	"fmt"
	"time"
)

// Service is the one lifecycle of every module: the five services
// satisfy it as they are, and hooks gives it to the infrastructure
// modules. The process calls, per module, Start in dependency order; Run
// as soon as Start returned; and, to stop, Drain on every module in
// reverse dependency order while the process still serves, then, again
// in reverse order, ends the module's Run (its context) and calls Stop.
type Service interface {
	// Start prepares the module and returns once it is usable. ctx lives
	// as long as the module: what Start leaves running (caches, watches)
	// may use it until the module stops.
	Start(ctx context.Context) error
	// Run is the module's background loop: it returns nil when ctx ends,
	// and an error only for a failure that must stop the process.
	Run(ctx context.Context) error
	// Drain stops taking new work and finishes the work in flight (a
	// task's SIGTERM grace, leaving membership), within ctx, while this
	// process still serves its peers.
	Drain(ctx context.Context)
	// Stop releases the module, within ctx, after its Run returned.
	Stop(ctx context.Context)
}

// hooks is a Service of optional functions (the infrastructure modules).
type hooks struct {
	start func(ctx context.Context) error
	run   func(ctx context.Context) error
	drain func(ctx context.Context)
	stop  func(ctx context.Context)
}

func (h *hooks) Start(ctx context.Context) error {
	if h.start == nil {
		return nil
	}
	return h.start(ctx)
}

func (h *hooks) Run(ctx context.Context) error {
	if h.run == nil {
		return nil
	}
	return h.run(ctx)
}

func (h *hooks) Drain(ctx context.Context) {
	if h.drain != nil {
		h.drain(ctx)
	}
}

func (h *hooks) Stop(ctx context.Context) {
	if h.stop != nil {
		h.stop(ctx)
	}
}

// built is a service module: build makes the service from what the
// module's dependencies wired (and mounts its API); the Service it
// returns does the rest.
type built struct {
	build func(ctx context.Context) (Service, error)
	svc   Service
}

func (b *built) Start(ctx context.Context) error {
	svc, err := b.build(ctx)
	if err != nil {
		return err
	}
	if err := svc.Start(ctx); err != nil {
		return err
	}
	b.svc = svc
	return nil
}

func (b *built) Run(ctx context.Context) error { return b.svc.Run(ctx) }
func (b *built) Drain(ctx context.Context)     { b.svc.Drain(ctx) }
func (b *built) Stop(ctx context.Context)      { b.svc.Stop(ctx) }

// ShutdownConfig times the process's stop.
type ShutdownConfig struct {
	// Timeout bounds the whole stop: every drain, every Run's end and
	// every Stop. A trainer agent whose tasks have a longer SIGTERM grace
	// than its default (--trainer-agent.stop-grace) extends it by the
	// difference (see boundFor).
	Timeout time.Duration `yaml:"timeout"`
	// DrainDelay is how long the process waits, after it turned its
	// health NOT_SERVING and left membership, before it stops serving:
	// the time a load balancer or a peer's resolver takes to notice.
	DrainDelay time.Duration `yaml:"drain_delay"`
	// HTTPTimeout bounds the HTTP edge's graceful stop; the requests
	// still running after it are cut.
	HTTPTimeout time.Duration `yaml:"http_timeout"`
}

// RegisterFlags registers the flags under the `shutdown.` prefix.
func (c *ShutdownConfig) RegisterFlags(fs *flag.FlagSet) {
	fs.DurationVar(&c.Timeout, "shutdown.timeout", 4500*time.Millisecond,
		"bound of the whole stop after a signal (extended by task SIGTERM graces longer than --trainer-agent.stop-grace)")
	fs.DurationVar(&c.DrainDelay, "shutdown.drain-delay", 0,
		"wait after turning health NOT_SERVING and leaving membership, before the servers stop")
	fs.DurationVar(&c.HTTPTimeout, "shutdown.http-timeout", 2*time.Second,
		"graceful stop of the HTTP edge; requests still running after it are cut")
}

// Validate checks the configuration.
func (c *ShutdownConfig) Validate() error {
	switch {
	case c.Timeout <= 0:
		return fmt.Errorf("shutdown.timeout: must be positive, got %s", c.Timeout)
	case c.DrainDelay < 0 || c.DrainDelay >= c.Timeout:
		return fmt.Errorf("shutdown.drain-delay: must be within [0, shutdown.timeout %s), got %s", c.Timeout, c.DrainDelay)
	case c.HTTPTimeout <= 0:
		return fmt.Errorf("shutdown.http-timeout: must be positive, got %s", c.HTTPTimeout)
	}
	return nil
}

// graceReporter is a module whose drain may take longer than the
// process's bound allows by default (the trainer agent, for the SIGTERM
// grace its tasks ask for).
type graceReporter interface {
	// ExtraGrace is how much longer than its default its drain may
	// take now.
	ExtraGrace() time.Duration
}

// ShutdownBound is how long the stop may take if it began now: the
// configured timeout, extended by what the running modules' drains ask
// for beyond their defaults.
func (a *App) ShutdownBound() time.Duration {
	bound := a.cfg.Shutdown.Timeout
	a.mu.Lock()
	running := a.running
	a.mu.Unlock()
	for _, name := range running {
		if b, ok := a.modules[name].svc.(*built); ok {
			if g, ok := b.svc.(graceReporter); ok {
				bound += max(0, g.ExtraGrace())
			}
		}
	}
	return bound
}

// startAll starts the modules in dependency order; each module's Run
// starts as soon as its Start returned. A failing Run ends ctx through
// fail.
func (a *App) startAll(ctx context.Context, fail context.CancelCauseFunc) error {
	for _, name := range a.order {
		m := a.modules[name]
		start := time.Now()
		// The module's context outlives ctx (the signal): it ends when
		// the module stops.
		mctx, mcancel := context.WithCancel(context.WithoutCancel(ctx))
		m.cancel = mcancel
		if err := a.startModule(ctx, mctx, name, m); err != nil {
			mcancel()
			return fmt.Errorf("start %s: %w", name, err)
		}
		m.ran = make(chan struct{})
		a.mu.Lock()
		a.running = append(a.running, name)
		a.mu.Unlock()
		a.log.Debug("module started", "module", name, "took", time.Since(start))
		go func() {
			defer close(m.ran)
			if err := m.svc.Run(mctx); err != nil && mctx.Err() == nil {
				a.log.Error("module failed", "module", name, "err", err)
				fail(fmt.Errorf("module %s: %w", name, err))
			}
		}()
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
	}
	return nil
}

// startModule runs m's Start with the module's context mctx, which ends
// if ctx ends first. A start that ignores its context's end (a call into
// a library that takes no context) gets startGrace to return, then is
// left behind, unstopped, so that a signal always ends the process.
func (a *App) startModule(ctx, mctx context.Context, name string, m *module) error {
	done := make(chan error, 1)
	go func() { done <- m.svc.Start(mctx) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		m.cancel()
	}
	t := time.NewTimer(startGrace)
	defer t.Stop()
	select {
	case err := <-done:
		return err
	case <-t.C:
		a.log.Warn("module start ignores the stop; leaving it behind", "module", name)
		return context.Cause(ctx)
	}
}

// stopAll stops the started modules within ctx: first it drains each in
// reverse dependency order (health NOT_SERVING and membership left
// first, as the membership module is the last to start), then, again in
// reverse order, it ends each module's Run, waits for it, and stops it.
// A module still running at ctx's end is left behind.
func (a *App) stopAll(ctx context.Context) {
	a.mu.Lock()
	running := a.running
	a.mu.Unlock()
	for i := len(running) - 1; i >= 0; i-- {
		a.modules[running[i]].svc.Drain(ctx)
	}
	for i := len(running) - 1; i >= 0; i-- {
		name := running[i]
		m := a.modules[name]
		m.cancel()
		select {
		case <-m.ran:
		case <-ctx.Done():
			a.log.Error("module still running at the end of the shutdown bound", "module", name)
		}
		m.svc.Stop(ctx)
		a.log.Debug("module stopped", "module", name)
	}
	a.mu.Lock()
	a.running = nil
	a.mu.Unlock()
}

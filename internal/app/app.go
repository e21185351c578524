package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/bmaas/bmaas/pkg/membership"
	"github.com/bmaas/bmaas/pkg/pki"
)

// module is one row of the dependency table.
type module struct {
	name string
	deps []string
	svc  Service
	// cancel ends the module's context (its Start's and Run's); ran is
	// closed when its Run returned.
	cancel context.CancelFunc
	ran    chan struct{}
}

// App is one process: a set of modules and their shared state.
type App struct {
	cfg      Config
	log      *slog.Logger
	reg      *prometheus.Registry
	modules  map[string]*module
	order    []string
	ready    atomic.Bool
	readyCh  chan struct{}
	addrs    Addrs
	addrsMu  sync.Mutex
	mu       sync.Mutex
	running  []string
	w        wiring
	stopping atomic.Bool
	httpSrv  *http.Server
	httpLis  net.Listener
	members  []*membership.Registration
	leave    context.CancelFunc
}

// Addrs are the process's bound addresses, known once it is ready.
type Addrs struct {
	GRPC          string
	HTTP          string
	EtcdEndpoints []string
	NATSURL       string
	// Etcd and NATS are the credentials the process uses (the embedded
	// servers' generated ones under bmaas up).
	Etcd EtcdAuth
	NATS NATSAuth
	// TLS are the process's certificate files when TLS is on.
	TLS pki.Files
}

// New builds the module table for cfg.
func New(cfg Config, logger *slog.Logger) (*App, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	// Every path handed on (to etcd's sockets, to tasks) is absolute.
	dir, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return nil, fmt.Errorf("data-dir %q: %w", cfg.DataDir, err)
	}
	cfg.DataDir = dir
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	a := &App{cfg: cfg, log: logger, reg: reg, modules: map[string]*module{}, readyCh: make(chan struct{})}
	for _, m := range a.table() {
		a.modules[m.name] = m
	}
	order, err := a.sortModules()
	if err != nil {
		return nil, err
	}
	a.order = order
	return a, nil
}

// sortModules orders modules so that each comes after its dependencies.
func (a *App) sortModules() ([]string, error) {
	var order []string
	state := map[string]int{} // 1 visiting, 2 done
	var visit func(string) error
	visit = func(n string) error {
		m, ok := a.modules[n]
		if !ok {
			return fmt.Errorf("module %q is not in the table", n)
		}
		switch state[n] {
		case 1:
			return fmt.Errorf("module dependency cycle at %q", n)
		case 2:
			return nil
		}
		state[n] = 1
		for _, d := range m.deps {
			if err := visit(d); err != nil {
				return err
			}
		}
		state[n] = 2
		order = append(order, n)
		return nil
	}
	for _, m := range a.table() {
		if err := visit(m.name); err != nil {
			return nil, err
		}
	}
	return order, nil
}

// Ready is closed once every module runs.
func (a *App) Ready() <-chan struct{} { return a.readyCh }

// Addrs returns the bound addresses (valid after Ready).
func (a *App) Addrs() Addrs {
	a.addrsMu.Lock()
	defer a.addrsMu.Unlock()
	return a.addrs
}

// Run locks the data directory, starts every module after its
// dependencies, waits for ctx or a failing module, then stops the started
// modules in reverse dependency order: every module drains (health
// NOT_SERVING, membership left, the drain delay, the agent's tasks
// stopped), then each one's Run ends and it stops (the servers'
// graceful stop with its deadline, then the rest), all within
// ShutdownBound.
func (a *App) Run(ctx context.Context) error {
	lock, err := lockDataDir(a.cfg.DataDir, a.cfg.Embedded, a.nodeName(), a.cfg.Targets)
	if err != nil {
		return err
	}
	defer lock.Release()
	runCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	err = a.startAll(runCtx, cancel)
	if err == nil {
		a.ready.Store(true)
		close(a.readyCh)
		a.log.Info("bmaas ready", "grpc", a.addrs.GRPC, "http", a.addrs.HTTP, "targets", a.cfg.Targets)
		<-runCtx.Done()
		if cause := context.Cause(runCtx); cause != nil && !errors.Is(cause, context.Canceled) {
			err = cause
		}
	}
	a.ready.Store(false)
	a.stopping.Store(true)
	cancel(nil)
	bound := a.ShutdownBound()
	sctx, scancel := context.WithTimeout(context.Background(), bound)
	defer scancel()
	a.log.Info("bmaas stopping", "bound", bound)
	a.stopAll(sctx)
	if sctx.Err() != nil {
		a.log.Error("modules still running at the end of the shutdown bound; exiting anyway", "bound", bound)
	}
	return err
}

// startGrace is how long a start that does not honour its context's end
// gets to return before it is left behind.
const startGrace = time.Second

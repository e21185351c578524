package traineragent

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"

	agentv1 "github.com/bmaas/bmaas/api/bmaas/agent/v1"
	"github.com/bmaas/bmaas/pkg/events"
	"github.com/bmaas/bmaas/pkg/gpu"
	"github.com/bmaas/bmaas/pkg/mesh"
	"github.com/bmaas/bmaas/pkg/modelcache"
	"github.com/bmaas/bmaas/pkg/pki"
	"github.com/bmaas/bmaas/pkg/sandbox"
	"github.com/bmaas/bmaas/pkg/store"
)

// Deps are the service's dependencies.
type Deps struct {
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	// Etcd is the shared etcd client; Store wraps it.
	Etcd  *clientv3.Client
	Store *store.Store
	Bus   *events.Bus
	// Dialer reaches other services by name (registry, scheduler, ...).
	Dialer *mesh.Dialer
	// Addr is this process's gRPC address (for membership and rendezvous).
	Addr string
	Now  func() time.Time
	// TLS, when set, serves model-server replicas over TLS, taking only
	// callers with a bmaas process's certificate; CA, when set, issues
	// each replica a certificate of its own.
	TLS *pki.Reloader
	CA  *pki.CA
}

// Service is the trainer agent's lifecycle.
type Service struct {
	cfg    Config
	deps   Deps
	log    *slog.Logger
	cli    *clientv3.Client
	labels map[string]string
	gpus   []gpu.Device
	src    gpu.Source
	box    *sandbox.Runner // confines process tasks
	cache  *modelcache.Cache

	mu      sync.Mutex
	reg     *regClient
	workers map[string]*worker // by assignment key
	maxTerm int64
	lease   clientv3.LeaseID

	// keysMu serialises the writes of keys under the node's lease;
	// leaseKeys are those keys (replica endpoints), by key.
	keysMu    sync.Mutex
	leaseKeys map[string]string

	recheck chan string
	// endRun ends Run (Drain); done is closed when Run returned.
	endRun context.CancelFunc
	done   chan struct{}
}

// New builds the service and discovers the node's GPUs.
func New(cfg Config, deps Deps) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Etcd == nil || deps.Dialer == nil {
		return nil, fmt.Errorf("trainer-agent: etcd client and dialer are required")
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	if deps.Store == nil {
		deps.Store = store.New(deps.Etcd)
	}
	labels, _ := parseLabels(cfg.Labels)
	s := &Service{cfg: cfg, deps: deps, log: deps.Logger.With("node", cfg.Node), cli: deps.Etcd, labels: labels,
		workers: map[string]*worker{}, leaseKeys: map[string]string{}, recheck: make(chan string, 16), done: make(chan struct{})}
	if err := s.setupSandbox(); err != nil {
		return nil, err
	}
	cache, err := s.openModelCache()
	if err != nil {
		return nil, err
	}
	s.cache = cache
	src, isNVML, err := gpu.Discover(cfg.Node, cfg.FakeGPUs, cfg.FakeGPUMemory, s.log)
	if err != nil {
		s.log.Warn("gpu discovery; running without gpus", "err", err)
	}
	if src != nil {
		if s.gpus, err = src.Devices(); err != nil {
			src.Close()
			return nil, fmt.Errorf("list gpus: %w", err)
		}
		s.src = src
		if isNVML && deps.Registerer != nil {
			if err := deps.Registerer.Register(gpu.NewCollector(src, cfg.Node, s.gpus).WithOwner(gpu.CgroupOwner(cfg.Node))); err != nil {
				s.log.Warn("register gpu metrics", "err", err)
			}
		}
	}
	return s, nil
}

// ServiceName is the gRPC service's full name (for health checks).
func ServiceName() string { return agentv1.AgentService_ServiceDesc.ServiceName }

// Register mounts the gRPC API.
func (s *Service) Register(g *grpc.Server) {
	agentv1.RegisterAgentServiceServer(g, &handler{s: s})
}

// Start has nothing to prepare: Run registers the node.
func (s *Service) Start(context.Context) error { return nil }

// Run registers the node and runs the assigned tasks until ctx is done
// or Drain is called; then it stops the tasks (each within its SIGTERM
// grace: its job's termination_grace_seconds, or --trainer-agent.stop-grace)
// and gives the node's lease back.
func (s *Service) Run(ctx context.Context) error {
	defer close(s.done)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s.mu.Lock()
	s.endRun = cancel
	s.mu.Unlock()
	if s.src != nil {
		defer s.src.Close()
	}
	if err := os.MkdirAll(s.cfg.workDir(), 0o755); err != nil {
		return fmt.Errorf("work dir: %w", err)
	}
	reg, err := s.deps.Dialer.Registry()
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.reg = &regClient{c: reg}
	s.mu.Unlock()
	var wg sync.WaitGroup
	wg.Go(func() { s.runNode(ctx) })
	wg.Go(func() { s.watch(ctx) })
	wg.Go(func() { s.reportGPUUsage(ctx) })
	wg.Wait()
	stop, cancelStop := context.WithTimeout(context.WithoutCancel(ctx), s.longestGrace()+time.Second)
	defer cancelStop()
	s.stopAll(stop)
	s.releaseLease(stop)
	return nil
}

// Drain stops the tasks while the process still serves (their last
// checkpoints reach the registry) and gives the node's lease back: it
// ends Run and waits for it within ctx.
func (s *Service) Drain(ctx context.Context) {
	s.mu.Lock()
	end := s.endRun
	s.mu.Unlock()
	if end != nil {
		end()
	}
	s.Stop(ctx)
}

// Stop waits, within ctx, until Run has stopped the tasks.
func (s *Service) Stop(ctx context.Context) {
	select {
	case <-s.done:
	case <-ctx.Done():
	}
}

// ExtraGrace is how much longer than --trainer-agent.stop-grace the
// longest SIGTERM grace of the running tasks is: the process's shutdown
// bound grows by it, so that a job's own grace is honoured.
func (s *Service) ExtraGrace() time.Duration { return max(0, s.longestGrace()-s.cfg.StopGrace) }

// longestGrace is the longest SIGTERM grace of the running tasks (the
// default grace when none asks for more).
func (s *Service) longestGrace() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.cfg.StopGrace
	for _, w := range s.workers {
		g = max(g, w.grace())
	}
	return g
}

// stopAll stops every worker and waits for them within ctx.
func (s *Service) stopAll(ctx context.Context) {
	s.mu.Lock()
	ws := make([]*worker, 0, len(s.workers))
	for _, w := range s.workers {
		ws = append(ws, w)
	}
	s.mu.Unlock()
	for _, w := range ws {
		w.stop(false)
	}
	for _, w := range ws {
		select {
		case <-w.done:
		case <-ctx.Done():
			return
		}
	}
}

// registry is the registry client; Run sets it before any worker starts.
func (s *Service) registry() *regClient {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reg
}

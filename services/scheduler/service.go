package scheduler

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"

	iamv1 "github.com/bmaas/bmaas/api/bmaas/iam/v1"
	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
	schedulerv1 "github.com/bmaas/bmaas/api/bmaas/scheduler/v1"
	"github.com/bmaas/bmaas/pkg/election"
	"github.com/bmaas/bmaas/pkg/events"
	"github.com/bmaas/bmaas/pkg/iam"
	"github.com/bmaas/bmaas/pkg/mesh"
	"github.com/bmaas/bmaas/pkg/store"
	"github.com/bmaas/bmaas/services/scheduler/schedkeys"
)

// electionService names the scheduler's election.
const electionService = schedkeys.Election

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
	// Registry, when set, is used instead of dialling "registry" (tests).
	// With neither, submitted jobs are not checked against the registry.
	Registry registryv1.RegistryServiceClient
	// Addr is this process's gRPC address (for membership and rendezvous).
	Addr string
	Now  func() time.Time
	// Projects, when set, is the process's cache of the projects (its
	// owner runs it); without it the scheduler follows them itself.
	Projects *store.Cache[*iamv1.Project]
}

// Service is the scheduler's lifecycle.
type Service struct {
	cfg   Config
	log   *slog.Logger
	sched *Scheduler
	id    string

	mu     sync.Mutex
	goneAt time.Time     // when another leader's key last vanished
	gone   chan struct{} // signalled on each such vanishing
}

// New builds the service.
func New(cfg Config, deps Deps) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Etcd == nil {
		return nil, errors.New("scheduler: an etcd client is required")
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	if deps.Registerer == nil {
		deps.Registerer = prometheus.NewRegistry()
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	if deps.Store == nil {
		deps.Store = store.New(deps.Etcd)
	}
	met, err := newMetrics(deps.Registerer)
	if err != nil {
		return nil, err
	}
	s := &Scheduler{cfg: cfg, cli: deps.Etcd, st: deps.Store, bus: deps.Bus, log: deps.Logger, now: deps.Now, met: met,
		pub: publisher{bus: deps.Bus, log: deps.Logger}}
	switch {
	case deps.Projects != nil:
		s.projects = deps.Projects
	case deps.Store != nil:
		s.projects = iam.NewProjectsCache(deps.Store, deps.Logger)
		s.runProjects = true
	}
	switch {
	case deps.Registry != nil:
		s.registry = func() (registryv1.RegistryServiceClient, error) { return deps.Registry, nil }
	case deps.Dialer != nil:
		s.registry = deps.Dialer.Registry
	}
	id := deps.Addr
	if id == "" {
		id = events.NewID()
	}
	return &Service{cfg: cfg, log: deps.Logger, sched: s, id: id, gone: make(chan struct{}, 1)}, nil
}

// ServiceName is the gRPC service's full name (for health checks).
func ServiceName() string { return schedulerv1.SchedulerService_ServiceDesc.ServiceName }

// Register mounts the gRPC API.
func (s *Service) Register(g *grpc.Server) {
	schedulerv1.RegisterSchedulerServiceServer(g, &handler{s: s.sched})
}

// Scheduler is the domain object (for in-process use and tests).
func (s *Service) Scheduler() *Scheduler { return s.sched }

// Start has nothing to prepare: every replica serves the API from etcd.
func (s *Service) Start(context.Context) error { return nil }

// Run campaigns for leadership and, while leading, places and reconciles
// jobs, until ctx is done; then leadership is resigned at once so a
// standby takes over.
func (s *Service) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go s.watchLeaders(ctx)
	if s.sched.runProjects {
		go func() { _ = s.sched.projects.Run(ctx) }()
	}
	return election.Run(ctx, s.sched.cli, election.Config{Service: electionService, ID: s.id, TTL: s.cfg.LeaderTTL},
		s.log, s.lead)
}

// Drain has nothing to finish: the leader's work ends with Run.
func (s *Service) Drain(context.Context) {}

// Stop has nothing to release once Run returned.
func (s *Service) Stop(context.Context) {}

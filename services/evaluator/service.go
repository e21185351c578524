package evaluator

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"

	evaluatorv1 "github.com/bmaas/bmaas/api/bmaas/evaluator/v1"
	gatewayv1 "github.com/bmaas/bmaas/api/bmaas/gateway/v1"
	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
	schedulerv1 "github.com/bmaas/bmaas/api/bmaas/scheduler/v1"
	"github.com/bmaas/bmaas/api/inference"
	"github.com/bmaas/bmaas/pkg/election"
	"github.com/bmaas/bmaas/pkg/events"
	"github.com/bmaas/bmaas/pkg/mesh"
	"github.com/bmaas/bmaas/pkg/store"
)

// electionService names the evaluator's election.
const electionService = "evaluator"

// Deps are the service's dependencies.
type Deps struct {
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	Etcd       *clientv3.Client
	Store      *store.Store
	Bus        *events.Bus
	// Dialer reaches the registry and the scheduler by name.
	Dialer *mesh.Dialer
	// Registry and Scheduler, when set, are used instead of dialling.
	Registry  registryv1.RegistryServiceClient
	Scheduler schedulerv1.SchedulerServiceClient
	// Gateway and Inference, when set, are used instead of dialling: the
	// deployment API and the data plane that evaluate the versions that do
	// not evaluate in process.
	Gateway   gatewayv1.DeploymentServiceClient
	Inference inference.GRPCInferenceServiceClient
	// ID names this replica in the election (its address).
	ID  string
	Now func() time.Time
}

// Service is the evaluator's lifecycle: every replica serves the API and
// consumes version events; the elected one drives experiments.
type Service struct {
	cfg Config
	log *slog.Logger
	ev  *Evaluator
	id  string
}

// New builds the service.
func New(cfg Config, deps Deps) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Etcd == nil {
		return nil, errors.New("evaluator: an etcd client is required")
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
	if deps.ID == "" {
		deps.ID = events.NewID()
	}
	ev := &Evaluator{cfg: cfg, cli: deps.Etcd, st: deps.Store, bus: deps.Bus, log: deps.Logger, now: deps.Now}
	ev.registry = func() (registryv1.RegistryServiceClient, error) {
		if deps.Registry != nil {
			return deps.Registry, nil
		}
		if deps.Dialer == nil {
			return nil, errors.New("no registry client")
		}
		return deps.Dialer.Registry()
	}
	ev.scheduler = func() (schedulerv1.SchedulerServiceClient, error) {
		if deps.Scheduler != nil {
			return deps.Scheduler, nil
		}
		if deps.Dialer == nil {
			return nil, errors.New("no scheduler client")
		}
		return deps.Dialer.Scheduler()
	}
	ev.gateway = func() (gatewayv1.DeploymentServiceClient, inference.GRPCInferenceServiceClient, error) {
		if deps.Gateway != nil {
			return deps.Gateway, deps.Inference, nil
		}
		if deps.Dialer == nil {
			return nil, nil, errors.New("no gateway client")
		}
		dc, err := deps.Dialer.Gateway()
		if err != nil {
			return nil, nil, err
		}
		ic, err := deps.Dialer.Inference()
		return dc, ic, err
	}
	return &Service{cfg: cfg, log: deps.Logger, ev: ev, id: deps.ID}, nil
}

// ServiceName is the gRPC service's full name (for health checks).
func ServiceName() string { return evaluatorv1.EvaluatorService_ServiceDesc.ServiceName }

// Register mounts the gRPC API.
func (s *Service) Register(g *grpc.Server) {
	evaluatorv1.RegisterEvaluatorServiceServer(g, &handler{e: s.ev})
}

// Evaluator is the domain object (for in-process use and tests).
func (s *Service) Evaluator() *Evaluator { return s.ev }

// Run consumes version events (automatic evaluation) and campaigns for
// leadership, driving experiments while leading, until ctx is done; then
// leadership is resigned at once so a standby takes over.
func (s *Service) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	if s.cfg.AutoEvaluate && s.ev.bus != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.ev.consumeVersions(ctx)
		}()
	}
	err := election.Run(ctx, s.ev.cli, election.Config{Service: electionService, ID: s.id, TTL: s.cfg.LeaderTTL},
		s.log, s.ev.lead)
	cancel()
	wg.Wait()
	return err
}

// Start has nothing to prepare: every replica serves the API from etcd.
func (s *Service) Start(context.Context) error { return nil }

// Drain has nothing to finish: evaluations in flight are the
// scheduler's jobs, and the leader's work ends with Run.
func (s *Service) Drain(context.Context) {}

// Stop has nothing to release once Run returned.
func (s *Service) Stop(context.Context) {}

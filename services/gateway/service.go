package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	gatewayv1 "github.com/bmaas/bmaas/api/bmaas/gateway/v1"
	iamv1 "github.com/bmaas/bmaas/api/bmaas/iam/v1"
	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
	schedulerv1 "github.com/bmaas/bmaas/api/bmaas/scheduler/v1"
	"github.com/bmaas/bmaas/api/inference"
	"github.com/bmaas/bmaas/pkg/apierr"
	"github.com/bmaas/bmaas/pkg/election"
	"github.com/bmaas/bmaas/pkg/iam"
	"github.com/bmaas/bmaas/pkg/mesh"
	"github.com/bmaas/bmaas/pkg/store"
)

// Deps are the service's dependencies.
type Deps struct {
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	Etcd       *clientv3.Client
	Store      *store.Store
	// Dialer reaches the registry and the scheduler by name.
	Dialer *mesh.Dialer
	// Addr identifies this replica in the leader election and in its
	// load reports.
	Addr string
	// NATS, when set, carries the load reports between the gateways, so
	// the leader autoscales on the traffic through all of them; without
	// it the leader sees only its own.
	NATS *nats.Conn
	Now  func() time.Time
	// Projects, when set, is the process's cache of the projects (its
	// owner runs it); without it the gateway follows them itself.
	Projects *store.Cache[*iamv1.Project]
}

// Service is the gateway's lifecycle.
type Service struct {
	cfg    Config
	deps   Deps
	log    *slog.Logger
	st     *store.Store
	now    func() time.Time
	router *router
	stats  *stats
	met    *metrics
	loads  *loads
	wake   chan struct{}
	cache  *store.Cache[*gatewayv1.Deployment]
	route  *routingState
	held   sync.Map // deployment name -> *atomic.Int64, its held requests
	llm    *llmWindows
	// projects mirrors the projects (their quotas; runProjects: the
	// gateway made it, and runs it); tokens counts the language-model
	// tokens they use a minute.
	projects    *store.Cache[*iamv1.Project]
	runProjects bool
	tokens      *tokenQuota
	// payloads logs sampled requests and responses; its stream exists
	// only with NATS.
	payloads *payloadLog
}

// New builds the service.
func New(cfg Config, deps Deps) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Etcd == nil || deps.Dialer == nil {
		return nil, errors.New("gateway: etcd client and dialer are required")
	}
	if deps.NATS != nil && deps.Addr == "" {
		return nil, errors.New("gateway: an address is required to report load")
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
	s := &Service{cfg: cfg, deps: deps, log: deps.Logger, st: deps.Store, now: deps.Now, wake: make(chan struct{}, 1),
		route: newRoutingState()}
	s.llm = newLLMWindows(time.Now)
	s.payloads = newPayloadLog(deps.Registerer)
	s.stats = newStats(deps.Now)
	s.met = newMetrics(deps.Registerer)
	s.loads = newLoads(deps.Addr, cfg.LoadReportInterval, deps.Now)
	s.router = newRouter(deps.Etcd, deps.Logger, cfg.ReplicaLane, deps.Dialer.TLS())
	s.cache = store.NewCache(deps.Store, deploymentKey(""), func() *gatewayv1.Deployment { return &gatewayv1.Deployment{} }, deps.Logger)
	if s.projects = deps.Projects; s.projects == nil {
		s.projects = iam.NewProjectsCache(deps.Store, deps.Logger)
		s.runProjects = true
	}
	s.tokens = newTokenQuota(func(project string) int64 {
		p, ok, _ := s.projects.Cached(iam.ProjectKey(project))
		if !ok {
			return 0
		}
		return p.GetQuota().GetLlmTokensPerMinute()
	}, nil)
	s.tokens.others = s.loads.tokens
	return s, nil
}

// ServiceName is the gRPC service's full name (for health checks).
func ServiceName() string { return gatewayv1.DeploymentService_ServiceDesc.ServiceName }

// InferenceServiceName is the KServe v2 service's full name.
func InferenceServiceName() string { return inference.GRPCInferenceService_ServiceDesc.ServiceName }

// Register mounts the deployment and runtime APIs and the KServe v2 data plane; g
// must run grpcsrv.Codec, as a grpcsrv server does.
func (s *Service) Register(g *grpc.Server) {
	gatewayv1.RegisterDeploymentServiceServer(g, &handler{s: s})
	gatewayv1.RegisterRuntimeServiceServer(g, &runtimeHandler{s: s})
	// ModelInfer is a pass-through (passthrough.go); the rest decodes.
	g.RegisterService(inferenceDesc(), &dataPlane{s: s})
}

// Start follows the ready endpoints until ctx is done; it returns once
// they are loaded. With NATS it also reports this gateway's load and
// keeps the other gateways' reports.
func (s *Service) Start(ctx context.Context) error {
	if s.deps.NATS != nil {
		if err := s.loads.subscribe(ctx, s.deps.NATS, s.log, s.kick); err != nil {
			return fmt.Errorf("subscribe to load reports: %w", err)
		}
		go s.reportLoad(ctx)
		if err := s.payloads.start(ctx, s.deps.NATS, s.cfg); err != nil {
			return fmt.Errorf("payload log: %w", err)
		}
	}
	go s.router.run(ctx)
	go func() { _ = s.cache.Run(ctx) }()
	if s.runProjects {
		go func() { _ = s.projects.Run(ctx) }()
	}
	for _, ready := range []<-chan struct{}{s.router.ready, s.cache.Ready()} {
		select {
		case <-ready:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// Run campaigns for leadership and reconciles deployments while leading.
func (s *Service) Run(ctx context.Context) error {
	return election.Run(ctx, s.deps.Etcd, election.Config{Service: "gateway", ID: s.deps.Addr, TTL: s.cfg.LeaderTTL}, s.log,
		func(ctx context.Context, _ int64) { s.lead(ctx) })
}

// Drain has nothing to finish: inference calls in flight end with the
// server's graceful stop, before Stop closes their replica connections.
func (s *Service) Drain(context.Context) {}

// Stop closes the connections to replicas.
func (s *Service) Stop(context.Context) { s.router.close() }

func (s *Service) depCache() *store.Cache[*gatewayv1.Deployment] { return s.cache }

// kick asks the leader (when it is this replica) to reconcile now.
func (s *Service) kick() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *Service) registry() (registryv1.RegistryServiceClient, error) {
	return s.deps.Dialer.Registry()
}

func (s *Service) scheduler() (schedulerv1.SchedulerServiceClient, error) {
	return s.deps.Dialer.Scheduler()
}

// resolveVersion turns a model reference into a READY version: a number
// as is, an alias through the model's aliases, "latest" as its newest
// version.
func (s *Service) resolveVersion(ctx context.Context, ref string) (*registryv1.ModelVersion, error) {
	model, target, err := ParseModelRef(ref)
	if err != nil {
		return nil, err
	}
	reg, err := s.registry()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	v, perr := strconv.ParseInt(target, 10, 64)
	if perr != nil {
		m, err := reg.GetModel(ctx, &registryv1.GetModelRequest{Name: model}, grpc.WaitForReady(true))
		if err != nil {
			return nil, refErr(ref, err)
		}
		var ok bool
		if v, ok = m.GetModel().GetAliases()[target]; !ok && target == "latest" {
			v, ok = m.GetModel().GetLatestVersion(), m.GetModel().GetLatestVersion() > 0
		}
		if !ok {
			return nil, apierr.Invalid("deployment.model", "model %q has no alias %q", model, target)
		}
	}
	mv, err := reg.GetModelVersion(ctx, &registryv1.GetModelVersionRequest{Model: model, Version: strconv.FormatInt(v, 10)}, grpc.WaitForReady(true))
	if err != nil {
		return nil, refErr(ref, err)
	}
	if mv.GetVersion().GetStatus() != registryv1.VersionStatus_VERSION_STATUS_READY {
		return nil, apierr.Precondition("model %s version %d is %s, not READY", model, v, mv.GetVersion().GetStatus())
	}
	return mv.GetVersion(), nil
}

func refErr(ref string, err error) error {
	if status.Code(err) == codes.NotFound {
		return apierr.Invalid("deployment.model", "%s not found in the registry", ref)
	}
	return err
}

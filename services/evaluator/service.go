package evaluator

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
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
	"github.com/bmaas/bmaas/services/evaluator/alerting"
	"github.com/bmaas/bmaas/services/evaluator/monitor"
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
	cfg     Config
	log     *slog.Logger
	ev      *Evaluator
	id      string
	mon     *monitor.Monitor
	alerts  *alerting.Engine
	leading atomic.Bool
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
	s := &Service{cfg: cfg, log: deps.Logger, ev: ev, id: deps.ID}
	if deps.Bus != nil {
		s.mon = monitor.New(monitor.Config{Window: cfg.MonitorWindow, Horizon: cfg.MonitorHorizon, Retention: cfg.MonitorRetention,
			MaxSamples: cfg.MonitorMaxSamples, MaxIndexed: cfg.MonitorMaxIndexed, MinRows: cfg.MonitorMinRows},
			monitor.Deps{JetStream: deps.Bus.JetStream(), Versions: ev.DeployedVersion, Replicas: ev.readyReplicas, Logger: deps.Logger.With("part", "monitor"),
				Registerer: deps.Registerer, Now: deps.Now})
	}
	var src alerting.Source = noWindows{}
	if s.mon != nil {
		src = s.mon
	}
	s.alerts = alerting.New(alerting.Config{Interval: cfg.AlertInterval, Resend: cfg.AlertResend,
		Alertmanagers: splitList(cfg.Alertmanagers), Webhooks: splitList(cfg.AlertWebhooks), MinRows: int64(cfg.MonitorMinRows),
		ExternalURL: cfg.ExternalURL},
		alerting.Deps{Store: deps.Store, Bus: deps.Bus, Source: src, Check: ev.CheckRule, Act: ev.Retrain, Follow: ev.FollowChain,
			Platform: ev.PlatformSeries,
			Logger:   deps.Logger.With("part", "alerts"), Now: deps.Now})
	ev.watch = s.watchLoop
	if s.mon != nil {
		ev.exportPayloads = func(ctx context.Context, req *evaluatorv1.CreateDatasetFromPayloadsRequest) (*evaluatorv1.CreateDatasetFromPayloadsResponse, error) {
			return s.mon.Export(ctx, req, ev.UploadDataset)
		}
	}
	return s, nil
}

// noWindows is the alert engine's source without a monitor.
type noWindows struct{}

func (noWindows) Latest(string, int64) *evaluatorv1.MonitorWindow { return nil }

// ServiceName is the gRPC service's full name (for health checks).
func ServiceName() string { return evaluatorv1.EvaluatorService_ServiceDesc.ServiceName }

// Register mounts the gRPC API.
func (s *Service) Register(g *grpc.Server) {
	evaluatorv1.RegisterEvaluatorServiceServer(g, &handler{e: s.ev})
	evaluatorv1.RegisterMonitorServiceServer(g, &monitorHandler{mon: s.mon, alerts: s.alerts, export: s.ev.exportPayloads})
}

// Monitor is the deployment monitor (nil without a bus).
func (s *Service) Monitor() *monitor.Monitor { return s.mon }

// Evaluator is the domain object (for in-process use and tests).
func (s *Service) Evaluator() *Evaluator { return s.ev }

// Run consumes version events (automatic evaluation) and campaigns for
// leadership, driving experiments while leading, until ctx is done; then
// leadership is resigned at once so a standby takes over.
func (s *Service) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	if s.mon != nil {
		wg.Add(2)
		go func() {
			defer wg.Done()
			if err := s.mon.Run(ctx); err != nil && ctx.Err() == nil {
				s.log.Warn("deployment monitor", "err", err)
			}
		}()
		go func() {
			defer wg.Done()
			s.standbyFlush(ctx)
		}()
	}
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

// watchLoop runs while this replica leads: every alert interval it brings
// the monitoring windows up to date (stored, exported) and evaluates the
// alert rules, fenced by the leader's term.
func (s *Service) watchLoop(ctx context.Context, fence clientv3.Cmp) {
	s.leading.Store(true)
	defer s.leading.Store(false)
	t := time.NewTicker(s.cfg.AlertInterval)
	defer t.Stop()
	if s.mon != nil {
		recorded := make(chan struct{})
		go func() {
			defer close(recorded)
			s.recordNodes(ctx)
		}()
		defer func() { <-recorded }()
	}
	for {
		if s.mon != nil {
			if err := s.mon.Flush(ctx, true); err != nil && ctx.Err() == nil {
				s.log.Warn("monitor flush", "err", err)
			}
		}
		s.alerts.Evaluate(ctx, fence)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// recordNodes samples the nodes' use every node-usage interval while
// this replica leads.
func (s *Service) recordNodes(ctx context.Context) {
	t := time.NewTicker(s.cfg.NodeUsageInterval)
	defer t.Stop()
	for {
		if nodes, err := s.ev.listNodes(ctx); err == nil {
			if err := s.mon.RecordNodes(ctx, nodes); err != nil && ctx.Err() == nil {
				s.log.Warn("record node usage", "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// standbyFlush keeps a standby's windows bounded (sealed and forgotten
// as the leader's are) without writing them.
func (s *Service) standbyFlush(ctx context.Context) {
	t := time.NewTicker(s.cfg.MonitorWindow)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if !s.leading.Load() {
				_ = s.mon.Flush(ctx, false)
			}
		}
	}
}

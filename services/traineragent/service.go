// Package traineragent is the trainer agent: it runs training tasks and model-server replicas on its node. This release serves its API skeleton and
// health; every call answers Unimplemented until the service is filled in.
package traineragent

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	clientv3 "go.etcd.io/etcd/client/v3"

	"google.golang.org/grpc"

	agentv1 "github.com/bmaas/bmaas/api/bmaas/agent/v1"
	"github.com/bmaas/bmaas/pkg/events"
	"github.com/bmaas/bmaas/pkg/mesh"
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
}

// Service is the trainer agent: it runs training tasks and model-server replicas on its node's lifecycle.
type Service struct {
	cfg Config
	log *slog.Logger
}

// New builds the service.
func New(cfg Config, deps Deps) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	return &Service{cfg: cfg, log: deps.Logger}, nil
}

// ServiceName is the gRPC service's full name (for health checks).
func ServiceName() string { return agentv1.AgentService_ServiceDesc.ServiceName }

// Run does the service's background work until ctx is done.
func (s *Service) Run(ctx context.Context) error {
	<-ctx.Done()
	return nil
}

// Stop releases what Run holds, within ctx.
func (s *Service) Stop(ctx context.Context) { _ = ctx }

// Register mounts the gRPC API.
func (s *Service) Register(g *grpc.Server) {
	agentv1.RegisterAgentServiceServer(g, handler{})
}

// handler answers Unimplemented for every call.
type handler struct {
	agentv1.UnimplementedAgentServiceServer
}

// Package traineragent is the trainer agent: it runs training tasks and model-server replicas on its node. This release serves its API skeleton and
// health; every call answers Unimplemented until the service is filled in.
package traineragent

import (
	"log/slog"

	"google.golang.org/grpc"

	agentv1 "github.com/bmaas/bmaas/api/bmaas/agent/v1"
)

// Deps are the service's dependencies.
type Deps struct {
	Logger *slog.Logger
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

// Register mounts the gRPC API.
func (s *Service) Register(g *grpc.Server) {
	agentv1.RegisterAgentServiceServer(g, handler{})
}

// handler answers Unimplemented for every call.
type handler struct {
	agentv1.UnimplementedAgentServiceServer
}

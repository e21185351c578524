// Package gateway is the inference gateway: deployments and the data plane. This release serves its API skeleton and
// health; every call answers Unimplemented until the service is filled in.
package gateway

import (
	"log/slog"

	"google.golang.org/grpc"

	gatewayv1 "github.com/bmaas/bmaas/api/bmaas/gateway/v1"
)

// Deps are the service's dependencies.
type Deps struct {
	Logger *slog.Logger
}

// Service is the inference gateway: deployments and the data plane's lifecycle.
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
func ServiceName() string { return gatewayv1.DeploymentService_ServiceDesc.ServiceName }

// Register mounts the gRPC API.
func (s *Service) Register(g *grpc.Server) {
	gatewayv1.RegisterDeploymentServiceServer(g, handler{})
}

// handler answers Unimplemented for every call.
type handler struct {
	gatewayv1.UnimplementedDeploymentServiceServer
}

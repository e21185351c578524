// Package evaluator is the evaluator: evaluations, experiments and promotion. This release serves its API skeleton and
// health; every call answers Unimplemented until the service is filled in.
package evaluator

import (
	"log/slog"

	"google.golang.org/grpc"

	evaluatorv1 "github.com/bmaas/bmaas/api/bmaas/evaluator/v1"
)

// Deps are the service's dependencies.
type Deps struct {
	Logger *slog.Logger
}

// Service is the evaluator: evaluations, experiments and promotion's lifecycle.
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
func ServiceName() string { return evaluatorv1.EvaluatorService_ServiceDesc.ServiceName }

// Register mounts the gRPC API.
func (s *Service) Register(g *grpc.Server) {
	evaluatorv1.RegisterEvaluatorServiceServer(g, handler{})
}

// handler answers Unimplemented for every call.
type handler struct {
	evaluatorv1.UnimplementedEvaluatorServiceServer
}

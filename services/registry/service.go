// Package registry is the model registry service: models, versions,
// aliases, datasets and the artifacts behind them. State lives in etcd
// (through pkg/store, with revision checks); artifact bytes live in the
// content-addressed blob store; every change is published on the event bus.
package registry

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"

	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
	"github.com/bmaas/bmaas/pkg/blob"
	"github.com/bmaas/bmaas/pkg/events"
	"github.com/bmaas/bmaas/pkg/store"
)

// Publisher publishes change events. The registry publishes without
// waiting for the stream's ack, off the request path: the change itself is
// already durable in etcd, failures are logged by the bus, and consumers
// reconcile from etcd state.
type Publisher interface {
	PublishAsync(e events.Event) error
}

// Deps are the registry's dependencies.
type Deps struct {
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	Store      *store.Store
	Blobs      blob.Store
	Events     Publisher
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// Service is the registry's lifecycle.
type Service struct {
	cfg Config
	reg *Registry
	log *slog.Logger
}

// New builds the service.
func New(cfg Config, deps Deps) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Store == nil || deps.Blobs == nil {
		return nil, errors.New("registry: store and blobs are required")
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	if deps.Registerer == nil {
		deps.Registerer = prometheus.NewRegistry()
	}
	r, err := newRegistry(cfg, deps)
	if err != nil {
		return nil, err
	}
	return &Service{cfg: cfg, reg: r, log: deps.Logger}, nil
}

// Register mounts the gRPC API.
func (s *Service) Register(g *grpc.Server) {
	registryv1.RegisterRegistryServiceServer(g, &handler{r: s.reg})
}

// Registry is the domain object (for in-process use and tests).
func (s *Service) Registry() *Registry { return s.reg }

// Start loads the model and version caches and keeps them current until
// ctx is done; it returns once both are loaded.
func (s *Service) Start(ctx context.Context) error {
	go func() { _ = s.reg.models.Run(ctx) }()
	go func() { _ = s.reg.versions.Run(ctx) }()
	for _, ready := range []<-chan struct{}{s.reg.models.Ready(), s.reg.versions.Ready()} {
		select {
		case <-ready:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// Run sweeps unreferenced blobs until ctx is done.
func (s *Service) Run(ctx context.Context) error {
	t := time.NewTicker(s.cfg.GCInterval)
	defer t.Stop()
	for {
		if _, err := s.reg.CollectGarbage(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("blob sweep", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-s.reg.gcKick:
		}
	}
}

// Drain has nothing to finish: calls in flight end with the server's
// graceful stop.
func (s *Service) Drain(context.Context) {}

// Stop has nothing to release: the caches end with Start's context.
func (s *Service) Stop(context.Context) {}

// ServiceName is the gRPC service's full name (for health checks).
func ServiceName() string { return registryv1.RegistryService_ServiceDesc.ServiceName }

package app

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/bmaas/bmaas/pkg/grpcsrv"
	"github.com/bmaas/bmaas/pkg/iam"
	"github.com/bmaas/bmaas/pkg/mesh"
	"github.com/bmaas/bmaas/services/evaluator"
	"github.com/bmaas/bmaas/services/gateway"
	iamsvc "github.com/bmaas/bmaas/services/iam"
	"github.com/bmaas/bmaas/services/registry"
	"github.com/bmaas/bmaas/services/scheduler"
	"github.com/bmaas/bmaas/services/traineragent"
)

// Module names.
const (
	modEtcd      = "etcd"
	modNATS      = "nats"
	modBlobs     = "blobs"
	modTelemetry = "telemetry"
	modServer    = "server"
	modIAM       = "iam"
	modServe     = "serve"
	modHTTP      = "http"
)

// table is the dependency table of this process's modules: each row
// names a module, the modules it needs, and its Service. A module starts
// after its dependencies and stops (drains, then stops) before them.
func (a *App) table() []*module {
	mods := []*module{
		{name: modTelemetry, svc: &hooks{start: a.startTelemetry, stop: a.stopTelemetry}},
		{name: modTLS, svc: &hooks{start: a.startTLS}},
		{name: modEtcd, deps: []string{modTLS}, svc: &hooks{start: a.startEtcd, run: a.runEtcd, stop: a.stopEtcd}},
		{name: modNATS, svc: &hooks{start: a.startNATS, stop: a.stopNATS}},
		{name: modServer, deps: []string{modTelemetry, modTLS, modEtcd, modNATS}, svc: &hooks{start: a.startServer}},
	}
	serveDeps := []string{modServer}
	add := func(name string, deps []string, build func(context.Context) (Service, error)) {
		if !a.cfg.Has(name) {
			return
		}
		mods = append(mods, &module{name: name, deps: append(deps, modServer), svc: &built{build: build}})
		serveDeps = append(serveDeps, name)
	}
	if a.cfg.Has(TargetRegistry) {
		mods = append(mods, &module{name: modBlobs, svc: &hooks{start: a.startBlobs}})
	}
	add(TargetRegistry, []string{modEtcd, modNATS, modBlobs}, a.newRegistry)
	if a.cfg.Has(TargetRegistry) {
		// The IAM and audit API goes with the registry.
		mods = append(mods, &module{name: modIAM, deps: []string{modEtcd, modNATS, modServer}, svc: &built{build: a.newIAM}})
		serveDeps = append(serveDeps, modIAM)
	}
	add(TargetScheduler, []string{modEtcd, modNATS}, a.newScheduler)
	add(TargetTrainerAgent, []string{modEtcd, modNATS}, a.newTrainerAgent)
	add(TargetEvaluator, []string{modEtcd, modNATS}, a.newEvaluator)
	add(TargetGateway, []string{modEtcd, modNATS}, a.newGateway)
	mods = append(mods,
		&module{name: modServe, deps: serveDeps, svc: &hooks{start: a.startServe, run: serving(a.runServe), stop: a.stopServe}},
		&module{name: modHTTP, deps: []string{modServe}, svc: &hooks{start: a.startHTTP, run: serving(a.runHTTP), stop: a.stopHTTP}},
		&module{name: modMembership, deps: []string{modHTTP, modEtcd}, svc: &hooks{start: a.startMembership,
			drain: a.drainMembership}},
	)
	return mods
}

// serving is the Run of a server module: serve (the server's blocking
// Serve) runs until the module's Stop ends it; Run returns when ctx
// ends, or with serve's error should the server fail before.
func serving(serve func(context.Context) error) func(context.Context) error {
	return func(ctx context.Context) error {
		errc := make(chan error, 1)
		go func() { errc <- serve(ctx) }()
		select {
		case err := <-errc:
			return err
		case <-ctx.Done():
			return nil
		}
	}
}

// The services satisfy Service as they are.
var (
	_ Service = (*registry.Service)(nil)
	_ Service = (*scheduler.Service)(nil)
	_ Service = (*traineragent.Service)(nil)
	_ Service = (*evaluator.Service)(nil)
	_ Service = (*gateway.Service)(nil)
)

func (a *App) startTelemetry(ctx context.Context) error {
	tp, shutdown, err := a.cfg.Telemetry.NewTracerProvider(ctx, "bmaas")
	if err != nil {
		return err
	}
	// With tracing off the server runs no tracing handler at all: it
	// would only extract and store trace context on every call.
	if a.cfg.Telemetry.OTLPEndpoint != "" {
		a.w.tracer = tp
	}
	a.w.stopTracer = shutdown
	return nil
}

func (a *App) stopTelemetry(ctx context.Context) {
	if a.w.stopTracer != nil {
		_ = a.w.stopTracer(ctx)
	}
}

func (a *App) startServer(context.Context) error {
	a.w.guard = iam.NewGuard(a.w.authority, a.w.audit, func(method string) bool {
		_, forward := a.route(method)
		return !forward
	})
	a.w.guard.SetLimits(iam.NewLimits(a.cfg.RateLimit, a.cfg.RateBurst, nil))
	s, err := grpcsrv.New(a.cfg.GRPC, grpcsrv.Deps{Logger: a.log, Registerer: a.reg, TracerProvider: a.w.tracer,
		UnknownService: a.proxy, TLS: a.serverTLS(), Guard: a.w.guard, Token: a.w.dialer.Token()})
	if err != nil {
		return err
	}
	a.w.server = s
	a.w.advertise = advertise(s.Addr(), a.cfg.AdvertiseHost, firstNonLoopback)
	a.setAddrs(func(ad *Addrs) { ad.GRPC = s.Addr() })
	return nil
}

// The services' builders make each service from what its dependencies
// wired and mount its API; the module then starts it.

func (a *App) newRegistry(context.Context) (Service, error) {
	svc, err := registry.New(a.cfg.Registry, registry.Deps{Logger: a.log.With("svc", TargetRegistry), Registerer: a.reg,
		Store: a.w.store, Blobs: a.w.blobs, Events: a.w.bus})
	if err != nil {
		return nil, err
	}
	svc.Register(a.w.server.GRPC())
	a.w.services = append(a.w.services, registry.ServiceName())
	return svc, nil
}

// newIAM serves projects, tokens and the audit trail, and with a token
// asked makes the bootstrap admin token on the first start.
func (a *App) newIAM(ctx context.Context) (Service, error) {
	js, err := jetstream.New(a.w.nc)
	if err != nil {
		return nil, err
	}
	svc, err := iamsvc.New(iamsvc.Deps{Logger: a.log.With("svc", "iam"), Store: a.w.store, JS: js, Auth: a.w.authority,
		OIDC: a.cfg.OIDC})
	if err != nil {
		return nil, err
	}
	if a.w.authority.Enabled() {
		file := filepath.Join(a.cfg.DataDir, secretsDir, adminTokenName)
		made, err := iamsvc.Bootstrap(ctx, a.w.store, file, time.Now())
		if err != nil {
			return nil, fmt.Errorf("bootstrap admin token: %w", err)
		}
		if made {
			a.log.Info("bootstrap admin token made", "file", file)
		}
	}
	svc.Register(a.w.server.GRPC())
	a.w.services = append(a.w.services, iamsvc.ServiceNames()...)
	return svc, nil
}

func (a *App) newScheduler(context.Context) (Service, error) {
	svc, err := scheduler.New(a.cfg.Scheduler, scheduler.Deps{Logger: a.log.With("svc", TargetScheduler), Registerer: a.reg,
		Etcd: a.w.etcdCli, Store: a.w.store, Bus: a.w.bus, Dialer: a.w.dialer, Addr: a.advertiseAddr(),
		Projects: a.w.authority.Projects()})
	if err != nil {
		return nil, err
	}
	svc.Register(a.w.server.GRPC())
	a.w.services = append(a.w.services, scheduler.ServiceName())
	return svc, nil
}

func (a *App) newTrainerAgent(context.Context) (Service, error) {
	cfg := a.cfg.TrainerAgent
	cfg.DataDir = a.cfg.DataDir
	cfg.SingleProcess = a.cfg.Embedded
	// Files no task may see (the data directory is hidden anyway).
	cfg.Secrets = append(cfg.Secrets, a.cfg.GRPC.TokenFile, a.cfg.Etcd.PasswordFile, a.cfg.Etcd.Key,
		a.cfg.NATS.PasswordFile, a.cfg.NATS.Creds, a.cfg.NATS.Key, a.cfg.TLS.KeyFile, a.cfg.TLS.CAKeyFile)
	svc, err := traineragent.New(cfg, traineragent.Deps{Logger: a.log.With("svc", TargetTrainerAgent), Registerer: a.reg,
		Etcd: a.w.etcdCli, Store: a.w.store, Bus: a.w.bus, Dialer: a.w.dialer, Addr: a.advertiseAddr(),
		TLS: a.w.tls, CA: a.w.ca})
	if err != nil {
		return nil, err
	}
	svc.Register(a.w.server.GRPC())
	a.w.services = append(a.w.services, traineragent.ServiceName())
	return svc, nil
}

func (a *App) newEvaluator(context.Context) (Service, error) {
	svc, err := evaluator.New(a.cfg.Evaluator, evaluator.Deps{Logger: a.log.With("svc", TargetEvaluator), Registerer: a.reg,
		Etcd: a.w.etcdCli, Store: a.w.store, Bus: a.w.bus, Dialer: a.w.dialer, ID: a.advertiseAddr()})
	if err != nil {
		return nil, err
	}
	svc.Register(a.w.server.GRPC())
	a.w.services = append(a.w.services, evaluator.ServiceName())
	return svc, nil
}

func (a *App) newGateway(context.Context) (Service, error) {
	svc, err := gateway.New(a.cfg.Gateway, gateway.Deps{Logger: a.log.With("svc", TargetGateway), Registerer: a.reg,
		Etcd: a.w.etcdCli, Store: a.w.store, Dialer: a.w.dialer, Addr: a.advertiseAddr(), NATS: a.w.nc,
		Projects: a.w.authority.Projects()})
	if err != nil {
		return nil, err
	}
	svc.Register(a.w.server.GRPC())
	a.w.gateway = svc
	a.w.services = append(a.w.services, gateway.ServiceName(), gateway.InferenceServiceName())
	return svc, nil
}

// startServe opens the client connection the HTTP edge uses; the gRPC
// server itself starts serving in runServe.
func (a *App) startServe(context.Context) error {
	// The edge checks the caller's token itself (pkg/iam's guard) and then calls
	// the services as the mesh does.
	creds := insecure.NewCredentials()
	if a.w.tls != nil {
		creds = credentials.NewTLS(a.w.tls.SelfClientConfig())
	}
	opts := []grpc.DialOption{grpc.WithTransportCredentials(creds),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(a.cfg.GRPC.MaxRecvMsgBytes))}
	if tok := a.w.dialer.Token(); tok != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(mesh.Bearer(tok)),
			grpc.WithChainUnaryInterceptor(mesh.OnBehalfUnary), grpc.WithChainStreamInterceptor(mesh.OnBehalfStream))
	}
	conn, err := grpc.NewClient(a.w.server.Addr(), opts...)
	if err != nil {
		return fmt.Errorf("self connection: %w", err)
	}
	a.w.selfConn = conn
	a.setServing(true)
	return nil
}

// setServing sets the gRPC health of every service of this process, and
// of the process itself ("").
func (a *App) setServing(serving bool) {
	for _, s := range a.w.services {
		a.w.server.SetServing(s, serving)
		if t, ok := targetOf(s); ok {
			a.w.server.SetServing(t, serving) // grpc_health_probe -service registry
		}
	}
	a.w.server.SetServing("", serving)
}

func (a *App) runServe(context.Context) error { return a.w.server.Serve() }

// stopServe stops the gRPC server gracefully within
// --grpc.shutdown-timeout (and ctx), then at once.
func (a *App) stopServe(ctx context.Context) {
	if a.w.selfConn != nil {
		_ = a.w.selfConn.Close()
	}
	a.w.server.Shutdown(ctx)
}

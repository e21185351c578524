package app

import (
	"context"
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/bmaas/bmaas/pkg/grpcsrv"
	"github.com/bmaas/bmaas/pkg/mesh"
	"github.com/bmaas/bmaas/services/evaluator"
	"github.com/bmaas/bmaas/services/gateway"
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
	modServe     = "serve"
	modHTTP      = "http"
)

// table is the dependency table of this process's modules.
func (a *App) table() []*module {
	mods := []*module{
		{name: modTelemetry, start: a.startTelemetry},
		{name: modTLS, start: a.startTLS},
		{name: modEtcd, deps: []string{modTLS}, start: a.startEtcd, stop: a.stopEtcd},
		{name: modNATS, start: a.startNATS, stop: a.stopNATS},
		{name: modServer, deps: []string{modTelemetry, modTLS}, start: a.startServer},
	}
	serveDeps := []string{modServer}
	add := func(name string, deps []string, m *module) {
		if !a.cfg.Has(name) {
			return
		}
		m.name, m.deps = name, append(deps, modServer)
		mods = append(mods, m)
		serveDeps = append(serveDeps, name)
	}
	if a.cfg.Has(TargetRegistry) {
		mods = append(mods, &module{name: modBlobs, start: a.startBlobs})
	}
	add(TargetRegistry, []string{modEtcd, modNATS, modBlobs}, &module{start: a.startRegistry})
	add(TargetScheduler, []string{modEtcd, modNATS}, &module{start: a.startScheduler})
	add(TargetTrainerAgent, []string{modEtcd, modNATS}, &module{start: a.startTrainerAgent})
	add(TargetEvaluator, []string{modEtcd, modNATS}, &module{start: a.startEvaluator})
	add(TargetGateway, []string{modEtcd, modNATS}, &module{start: a.startGateway})
	mods = append(mods,
		&module{name: modServe, deps: serveDeps, start: a.startServe, run: a.runServe, stop: a.stopServe},
		&module{name: modHTTP, deps: []string{modServe}, start: a.startHTTP, run: a.runHTTP, stop: a.stopHTTP},
		&module{name: modMembership, deps: []string{modHTTP, modEtcd}, start: a.startMembership, stop: a.stopMembership},
	)
	return mods
}

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
	a.modules[modTelemetry].stop = func(ctx context.Context) { _ = shutdown(ctx) }
	return nil
}

func (a *App) startServer(context.Context) error {
	s, err := grpcsrv.New(a.cfg.GRPC, grpcsrv.Deps{Logger: a.log, Registerer: a.reg, TracerProvider: a.w.tracer,
		UnknownService: a.proxy, TLS: a.serverTLS()})
	if err != nil {
		return err
	}
	a.w.server = s
	a.w.advertise = advertise(s.Addr(), a.cfg.AdvertiseHost, firstNonLoopback)
	a.setAddrs(func(ad *Addrs) { ad.GRPC = s.Addr() })
	return nil
}

func (a *App) startRegistry(ctx context.Context) error {
	svc, err := registry.New(a.cfg.Registry, registry.Deps{Logger: a.log.With("svc", TargetRegistry), Registerer: a.reg,
		Store: a.w.store, Blobs: a.w.blobs, Events: a.w.bus})
	if err != nil {
		return err
	}
	if err := svc.Start(ctx); err != nil {
		return err
	}
	svc.Register(a.w.server.GRPC())
	a.w.services = append(a.w.services, registry.ServiceName())
	a.modules[TargetRegistry].run = svc.Run
	return nil
}

func (a *App) startScheduler(context.Context) error {
	svc, err := scheduler.New(a.cfg.Scheduler, scheduler.Deps{Logger: a.log.With("svc", TargetScheduler), Registerer: a.reg,
		Etcd: a.w.etcdCli, Store: a.w.store, Bus: a.w.bus, Dialer: a.w.dialer, Addr: a.advertiseAddr()})
	if err != nil {
		return err
	}
	svc.Register(a.w.server.GRPC())
	a.w.services = append(a.w.services, scheduler.ServiceName())
	m := a.modules[TargetScheduler]
	m.run, m.stop = svc.Run, svc.Stop
	return nil
}

func (a *App) startTrainerAgent(context.Context) error {
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
		return err
	}
	svc.Register(a.w.server.GRPC())
	a.w.services = append(a.w.services, traineragent.ServiceName())
	m := a.modules[TargetTrainerAgent]
	m.run, m.stop = svc.Run, svc.Stop
	return nil
}

func (a *App) startEvaluator(context.Context) error {
	svc, err := evaluator.New(a.cfg.Evaluator, evaluator.Deps{Logger: a.log.With("svc", TargetEvaluator), Registerer: a.reg,
		Etcd: a.w.etcdCli, Store: a.w.store, Bus: a.w.bus, Dialer: a.w.dialer, ID: a.advertiseAddr()})
	if err != nil {
		return err
	}
	svc.Register(a.w.server.GRPC())
	a.w.services = append(a.w.services, evaluator.ServiceName())
	m := a.modules[TargetEvaluator]
	m.run, m.stop = svc.Run, svc.Stop
	return nil
}

func (a *App) startGateway(ctx context.Context) error {
	svc, err := gateway.New(a.cfg.Gateway, gateway.Deps{Logger: a.log.With("svc", TargetGateway), Registerer: a.reg,
		Etcd: a.w.etcdCli, Store: a.w.store, Dialer: a.w.dialer, Addr: a.advertiseAddr(), NATS: a.w.nc})
	if err != nil {
		return err
	}
	if err := svc.Start(ctx); err != nil {
		return err
	}
	svc.Register(a.w.server.GRPC())
	a.w.gateway = svc
	a.w.services = append(a.w.services, gateway.ServiceName(), gateway.InferenceServiceName())
	m := a.modules[TargetGateway]
	m.run, m.stop = svc.Run, svc.Stop
	return nil
}

// startServe opens the client connection the HTTP edge uses; the gRPC
// server itself starts serving in runServe.
func (a *App) startServe(context.Context) error {
	// The edge checks the caller's token itself (HTTPAuth) and then calls
	// the services as the mesh does.
	creds := insecure.NewCredentials()
	if a.w.tls != nil {
		creds = credentials.NewTLS(a.w.tls.SelfClientConfig())
	}
	opts := []grpc.DialOption{grpc.WithTransportCredentials(creds),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(a.cfg.GRPC.MaxRecvMsgBytes))}
	if tok := a.w.dialer.Token(); tok != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(mesh.Bearer(tok)))
	}
	conn, err := grpc.NewClient(a.w.server.Addr(), opts...)
	if err != nil {
		return fmt.Errorf("self connection: %w", err)
	}
	a.w.selfConn = conn
	for _, s := range a.w.services {
		a.w.server.SetServing(s, true)
		if t, ok := targetOf(s); ok {
			a.w.server.SetServing(t, true) // grpc_health_probe -service registry
		}
	}
	a.w.server.SetServing("", true)
	return nil
}

func (a *App) runServe(context.Context) error { return a.w.server.Serve() }

func (a *App) stopServe(ctx context.Context) {
	if a.w.selfConn != nil {
		_ = a.w.selfConn.Close()
	}
	a.w.server.Shutdown(ctx)
}

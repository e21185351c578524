package app

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/nats-io/nats.go"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"

	"github.com/bmaas/bmaas/internal/embedded"
	"github.com/bmaas/bmaas/pkg/blob"
	"github.com/bmaas/bmaas/pkg/events"
	"github.com/bmaas/bmaas/pkg/grpcsrv"
	"github.com/bmaas/bmaas/pkg/iam"
	"github.com/bmaas/bmaas/pkg/mesh"
	"github.com/bmaas/bmaas/pkg/pki"
	"github.com/bmaas/bmaas/pkg/store"
	"github.com/bmaas/bmaas/services/gateway"
)

// wiring is what modules hand to the modules that depend on them.
type wiring struct {
	etcd    *embedded.Etcd
	nats    *embedded.NATS
	etcdCli *clientv3.Client
	nc      *nats.Conn
	bus     *events.Bus
	store   *store.Store
	blobs   *blob.Local
	tracer  trace.TracerProvider
	// stopTracer flushes and ends the tracer provider.
	stopTracer func(context.Context) error
	server     *grpcsrv.Server
	selfConn   *grpc.ClientConn
	services   []string
	// dialer reaches other services by name through membership.
	dialer *mesh.Dialer
	// forward relays the calls of services this process does not run.
	forward grpc.StreamHandler
	// advertise is the gRPC address others reach this process at.
	advertise string
	// gateway serves the KServe v2 REST routes on the HTTP edge.
	gateway *gateway.Service
	// tls serves the process's certificates (nil when TLS is off); ca,
	// with --tls.ca-key-file, issues replicas' certificates.
	tls *pki.Reloader
	ca  *pki.CA
	// authority authenticates callers (the mesh token, the API tokens in
	// etcd); audit records the trail; guard is both, with authz, at the
	// gRPC server and the HTTP edge.
	authority *iam.Authority
	audit     *iam.Auditor
	guard     *iam.Guard
	// cleanSockets removes the embedded etcd's socket directory when it
	// is a temporary one.
	cleanSockets func()
}

func (a *App) startEtcd(ctx context.Context) error {
	if a.cfg.Embedded {
		if err := a.startEmbeddedEtcd(ctx); err != nil {
			return err
		}
	}
	cli, err := a.cfg.Etcd.Client(ctx, a.cfg.EtcdEndpoints)
	if err != nil {
		return fmt.Errorf("etcd client: %w", err)
	}
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := cli.Status(sctx, a.cfg.EtcdEndpoints[0]); err != nil {
		_ = cli.Close()
		return fmt.Errorf("etcd %v: %w", a.cfg.EtcdEndpoints, err)
	}
	a.w.etcdCli = cli
	a.w.store = store.New(cli)
	token, err := a.meshToken()
	if err != nil {
		_ = cli.Close()
		return err
	}
	a.w.authority = iam.NewAuthority(token, a.w.store, nil, a.log.With("svc", "iam"))
	// The projects, which the guard, the scheduler and the gateway read.
	if p := a.w.authority.Projects(); p != nil {
		go func() { _ = p.Run(ctx) }()
	}
	if a.w.authority.Enabled() {
		go func() { _ = a.w.authority.Run(ctx) }()
	}
	a.w.dialer = mesh.NewDialer(cli, token, a.log)
	if _, err := a.w.dialer.WithMetrics(a.reg); err != nil {
		_ = cli.Close()
		return fmt.Errorf("mesh metrics: %w", err)
	}
	if a.w.tls != nil {
		a.w.dialer.WithTLS(a.w.tls.ClientConfig())
	}
	a.w.forward = a.w.dialer.Proxy(a.route)
	a.setAddrs(func(ad *Addrs) { ad.EtcdEndpoints, ad.Etcd = a.cfg.EtcdEndpoints, a.cfg.Etcd })
	return nil
}

// meshToken is the token of the platform's own calls: --auth.token-file's,
// or with bmaas up --auth one generated into the data directory ("":
// the platform asks no token).
func (a *App) meshToken() (string, error) {
	if a.cfg.Auth && a.cfg.GRPC.TokenFile == "" {
		secrets := filepath.Join(a.cfg.DataDir, secretsDir)
		if _, err := ensureSecret(secrets, meshTokenName); err != nil {
			return "", fmt.Errorf("mesh token: %w", err)
		}
		a.cfg.GRPC.TokenFile = filepath.Join(secrets, meshTokenName)
	}
	return a.cfg.GRPC.Token()
}

// startEmbeddedEtcd runs etcd on unix sockets in a directory only this
// user may enter, with authentication on and a root password generated
// into the data directory on the first start.
func (a *App) startEmbeddedEtcd(ctx context.Context) error {
	secrets := filepath.Join(a.cfg.DataDir, secretsDir)
	pw, err := ensureSecret(secrets, etcdPasswordName)
	if err != nil {
		return fmt.Errorf("etcd password: %w", err)
	}
	sockets, cleanup, err := a.socketDir()
	if err != nil {
		return fmt.Errorf("etcd sockets: %w", err)
	}
	e, err := embedded.StartEtcd(ctx, embedded.EtcdConfig{Dir: filepath.Join(a.cfg.DataDir, "etcd"), SocketDir: sockets,
		RootPassword: pw, Fast: a.cfg.FastElection, Logger: a.log.With("svc", "etcd")})
	if err != nil {
		cleanup()
		return err
	}
	a.w.etcd, a.w.cleanSockets = e, cleanup
	a.cfg.EtcdEndpoints = e.Endpoints()
	a.cfg.Etcd = EtcdAuth{Username: embedded.RootUser, PasswordFile: filepath.Join(secrets, etcdPasswordName)}
	return nil
}

// runEtcd watches the embedded etcd: a listener's failure, or its server
// stopping on its own (a full disk, a corrupt WAL), stops the process
// with that error.
func (a *App) runEtcd(ctx context.Context) error {
	if a.w.etcd == nil {
		return nil
	}
	select {
	case err, ok := <-a.w.etcd.Err():
		if !ok || err == nil {
			err = errors.New("stopped")
		}
		return fmt.Errorf("embedded etcd: %w", err)
	case <-a.w.etcd.Stopped():
		return errors.New("embedded etcd: its server stopped")
	case <-ctx.Done():
		return nil
	}
}

func (a *App) stopEtcd(context.Context) {
	if a.w.dialer != nil {
		a.w.dialer.Close()
	}
	if a.w.etcdCli != nil {
		_ = a.w.etcdCli.Close()
	}
	if a.w.etcd != nil {
		a.w.etcd.Close()
		a.w.cleanSockets()
	}
}

func (a *App) startNATS(ctx context.Context) error {
	if a.cfg.Embedded {
		// Loopback only, and only with the password generated into the
		// data directory.
		secrets := filepath.Join(a.cfg.DataDir, secretsDir)
		pw, err := ensureSecret(secrets, natsPasswordName)
		if err != nil {
			return fmt.Errorf("nats password: %w", err)
		}
		n, err := embedded.StartNATS(embedded.NATSConfig{StoreDir: filepath.Join(a.cfg.DataDir, "nats"), Addr: "127.0.0.1:0",
			User: embeddedNATSUser, Password: pw, Logger: a.log.With("svc", "nats")})
		if err != nil {
			return err
		}
		a.w.nats = n
		a.cfg.NATSURL = n.ClientURL()
		a.cfg.NATS = NATSAuth{User: embeddedNATSUser, PasswordFile: filepath.Join(secrets, natsPasswordName)}
	}
	auth, err := a.cfg.NATS.Options()
	if err != nil {
		return err
	}
	nc, err := nats.Connect(a.cfg.NATSURL, append(auth, nats.Name("bmaas-"+a.nodeName()), nats.MaxReconnects(-1),
		nats.ReconnectWait(250*time.Millisecond))...)
	if err != nil {
		return fmt.Errorf("nats %s: %w", a.cfg.NATSURL, err)
	}
	bus, err := events.NewBus(ctx, nc, events.Config{}, a.log)
	if err != nil {
		nc.Close()
		return fmt.Errorf("event bus: %w", err)
	}
	retention := a.cfg.AuditRetention
	if retention == 0 {
		retention = 90 * 24 * time.Hour
	}
	audit, err := iam.NewAuditor(ctx, nc, retention, a.reg, a.log.With("svc", "audit"))
	if err != nil {
		nc.Close()
		return fmt.Errorf("audit trail: %w", err)
	}
	a.w.nc, a.w.bus, a.w.audit = nc, bus, audit
	a.setAddrs(func(ad *Addrs) { ad.NATSURL, ad.NATS = a.cfg.NATSURL, a.cfg.NATS })
	return nil
}

func (a *App) stopNATS(ctx context.Context) {
	if a.w.bus != nil {
		if err := a.w.bus.Flush(ctx); err != nil {
			a.log.Warn("flush events", "err", err)
		}
	}
	if a.w.nc != nil {
		_ = a.w.nc.Drain()
		a.w.nc.Close()
	}
	if a.w.nats != nil {
		a.w.nats.Close()
	}
}

func (a *App) startBlobs(context.Context) error {
	dir := filepath.Join(a.cfg.DataDir, "blobs")
	l, err := blob.NewLocal(dir)
	if err != nil {
		return fmt.Errorf("blob store %s: %w", dir, err)
	}
	// Staged files of uploads a crash interrupted can go at once: no
	// upload is in flight before the server starts.
	if n, err := l.CleanTemp(0); err != nil {
		return fmt.Errorf("clean staged blobs: %w", err)
	} else if n > 0 {
		a.log.Info("removed interrupted uploads", "count", n)
	}
	a.w.blobs = l
	return nil
}

func (a *App) setAddrs(f func(*Addrs)) {
	a.addrsMu.Lock()
	defer a.addrsMu.Unlock()
	f(&a.addrs)
}

func (a *App) nodeName() string {
	if a.cfg.NodeName != "" {
		return a.cfg.NodeName
	}
	h, err := os.Hostname()
	if err != nil {
		return "bmaas"
	}
	return h
}

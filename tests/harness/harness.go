// Package harness starts real bmaas clusters for integration tests: the
// whole platform in-process (as `bmaas up` runs it, embedded etcd and NATS
// on 127.0.0.1 with free ports and a temporary data directory), the built
// binary as separate OS processes, or external etcd and NATS binaries.
// Package tests that need one etcd or one NATS use internal/testenv.
//
// Every start is for the integration tier only: in a test binary built
// without -tags integration it fails the test before anything starts
// (testenv.RequireIntegration).
package harness

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"flag"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
	"github.com/bmaas/bmaas/internal/app"
	"github.com/bmaas/bmaas/internal/testenv"
	"github.com/bmaas/bmaas/pkg/mesh"
)

// Cluster is a running in-process platform.
type Cluster struct {
	Config   app.Config
	Addrs    app.Addrs
	Conn     *grpc.ClientConn
	Registry registryv1.RegistryServiceClient
	// HTTP is the base URL of the HTTP edge.
	HTTP string
	// Token is the bearer token when auth is on; Conn sends it.
	Token string
	// HTTPClient calls HTTP; over TLS it trusts the cluster's CA.
	HTTPClient *http.Client
	// TLS, when the cluster serves TLS, is the configuration of a user's
	// client (the CA and the development client certificate); Conn uses it.
	TLS *tls.Config

	cancel context.CancelFunc
	done   chan error
}

// Option changes the configuration before start.
type Option func(*app.Config)

// WithTokenFile turns auth on with the bearer token in path.
func WithTokenFile(path string) Option { return func(c *app.Config) { c.GRPC.TokenFile = path } }

// WithTLS serves TLS with the development PKI of bmaas up --tls.
func WithTLS() Option { return func(c *app.Config) { c.DevTLS = true } }

// WithDataDir reuses a data directory (for restart tests).
func WithDataDir(dir string) Option { return func(c *app.Config) { c.DataDir = dir } }

// DefaultConfig is `bmaas up` with free ports, a temporary data directory
// and fast etcd timing.
func DefaultConfig(t testing.TB) app.Config {
	var cfg app.Config
	cfg.RegisterFlags(flag.NewFlagSet("", flag.ContinueOnError))
	cfg.Embedded = true
	cfg.Targets = app.AllTargets
	cfg.DataDir = t.TempDir()
	cfg.GRPC.Addr = "127.0.0.1:0"
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.FastElection = true
	cfg.Registry.GCInterval = time.Hour
	// Replicas run as the bmaas binary's sandboxed processes, as under
	// bmaas up.
	cfg.TrainerAgent.ReplicaBinary = Binary(t)
	return cfg
}

// Start runs a cluster until the test ends.
func Start(t testing.TB, opts ...Option) *Cluster {
	t.Helper()
	cfg := DefaultConfig(t)
	for _, o := range opts {
		o(&cfg)
	}
	return StartConfig(t, cfg)
}

// StartConfig runs a cluster with cfg until the test ends.
func StartConfig(t testing.TB, cfg app.Config) *Cluster {
	t.Helper()
	testenv.RequireIntegration(t)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		logger = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	a, err := app.New(cfg, logger)
	if err != nil {
		t.Fatalf("app: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &Cluster{Config: cfg, cancel: cancel, done: make(chan error, 1)}
	go func() { c.done <- a.Run(ctx) }()
	select {
	case <-a.Ready():
	case err := <-c.done:
		cancel()
		t.Fatalf("cluster stopped before ready: %v", err)
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatal("cluster not ready after 30s")
	}
	c.Addrs = a.Addrs()
	c.HTTP = "http://" + c.Addrs.HTTP
	c.HTTPClient = http.DefaultClient
	if c.Token, err = cfg.GRPC.Token(); err != nil {
		t.Fatalf("token: %v", err)
	}
	creds := insecure.NewCredentials()
	if cfg.DevTLS {
		c.TLS = devClientTLS(t, cfg.DataDir)
		creds = credentials.NewTLS(c.TLS)
		c.HTTP = "https://" + c.Addrs.HTTP
		c.HTTPClient = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: c.TLS.RootCAs}}}
	}
	opts := []grpc.DialOption{grpc.WithTransportCredentials(creds)}
	if c.Token != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(mesh.Bearer(c.Token)))
	}
	conn, err := grpc.NewClient(c.Addrs.GRPC, opts...)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	c.Conn = conn
	c.Registry = registryv1.NewRegistryServiceClient(conn)
	t.Cleanup(func() { _ = c.Stop() })
	return c
}

// Stop shuts the cluster down and returns Run's error.
func (c *Cluster) Stop() error {
	if c.cancel == nil {
		return nil
	}
	_ = c.Conn.Close()
	c.cancel()
	c.cancel = nil
	return <-c.done
}

// EtcdClient is a client of the cluster's etcd with its credentials.
func (c *Cluster) EtcdClient(t testing.TB) *clientv3.Client {
	t.Helper()
	cli, err := c.Addrs.Etcd.Client(context.Background(), c.Addrs.EtcdEndpoints)
	if err != nil {
		t.Fatalf("etcd client: %v", err)
	}
	t.Cleanup(func() { _ = cli.Close() })
	return cli
}

// NATSConn is a connection to the cluster's NATS with its credentials.
func (c *Cluster) NATSConn(t testing.TB) *nats.Conn {
	t.Helper()
	opts, err := c.Addrs.NATS.Options()
	if err != nil {
		t.Fatalf("nats options: %v", err)
	}
	nc, err := nats.Connect(c.Addrs.NATSURL, opts...)
	if err != nil {
		t.Fatalf("nats: %v", err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// devClientTLS is a user's TLS configuration for the development PKI in
// dataDir: its CA and client certificate.
func devClientTLS(t testing.TB, dataDir string) *tls.Config {
	t.Helper()
	dir, err := filepath.Abs(dataDir)
	if err != nil {
		t.Fatal(err)
	}
	f := app.DevTLS(dir)
	ca, err := os.ReadFile(f.CA)
	if err != nil {
		t.Fatalf("development CA: %v", err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	pair, err := tls.LoadX509KeyPair(f.ClientCert, f.ClientKey)
	if err != nil {
		t.Fatalf("development client certificate: %v", err)
	}
	return &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}

// Package testenv is the harness of package tests: it starts real
// embedded etcd and NATS servers (127.0.0.1, free ports, temporary
// directories, stopped when the test ends), serves gRPC services on
// loopback, and holds the small helpers that the services' tests share.
// Whole-cluster tests use tests/harness, which starts the platform through
// internal/app.
//
// # Tiers
//
// A test that starts etcd, NATS, a cluster or the bmaas binary is an
// integration test: its file begins with
//
//	//go:build integration
//
// `make test-unit` (go test ./...) builds without the tag and runs the
// unit tier: no etcd, no NATS, no cluster. `make test-integration` builds
// with it. In a build without the tag, Etcd, NATS and the starts of
// tests/harness fail the test before anything starts (RequireIntegration),
// so a test placed in the wrong tier is caught rather than slowing the
// unit tier down. Benchmarks (make bench) are not a tier and may start
// servers in any build.
//
// # Embedded servers
//
// internal/embedded is imported by internal/app, which runs it for
// `bmaas up`, and by this package, which runs the same servers for package
// tests; by nothing else (TestOnlyAppAndTestenvImportEmbedded keeps it
// so). Starting them here rather than through internal/app keeps a
// package test to one etcd or one NATS, without the module table,
// listeners and services of a whole process.
package testenv

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/bmaas/bmaas/internal/embedded"
)

// Etcd starts an embedded etcd with fast timing and returns its endpoints.
// It is for integration tests only (RequireIntegration).
func Etcd(t testing.TB) []string {
	t.Helper()
	RequireIntegration(t)
	e, err := embedded.StartEtcd(t.Context(), embedded.EtcdConfig{Dir: t.TempDir(), Fast: true})
	if err != nil {
		t.Fatalf("start etcd: %v", err)
	}
	t.Cleanup(e.Close)
	return e.Endpoints()
}

// EtcdClient starts an embedded etcd and returns a client connected to it.
func EtcdClient(t testing.TB) *clientv3.Client {
	t.Helper()
	return NewEtcdClient(t, Etcd(t))
}

// NewEtcdClient connects a new client to endpoints, closed at cleanup.
func NewEtcdClient(t testing.TB, endpoints []string) *clientv3.Client {
	t.Helper()
	c, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatalf("etcd client: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// NATS starts an embedded NATS server with JetStream and returns its URL.
// It is for integration tests only (RequireIntegration).
func NATS(t testing.TB) string {
	t.Helper()
	RequireIntegration(t)
	n, err := embedded.StartNATS(embedded.NATSConfig{StoreDir: t.TempDir()})
	if err != nil {
		t.Fatalf("start nats: %v", err)
	}
	t.Cleanup(n.Close)
	return n.ClientURL()
}

// NATSConn starts an embedded NATS server and returns a connection to it.
func NATSConn(t testing.TB) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(NATS(t))
	if err != nil {
		t.Fatalf("nats connect: %v", err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// Package testenv starts real embedded etcd and NATS servers for tests,
// on 127.0.0.1 with free ports and temporary directories, and stops them
// when the test ends.
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
func Etcd(t testing.TB) []string {
	t.Helper()
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
func NATS(t testing.TB) string {
	t.Helper()
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

// Package embedded runs an in-process etcd member and an in-process NATS
// server with JetStream, for `bmaas up` and for the integration-test
// harness. It is the only package that imports the etcd server.
package embedded

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"syscall"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
)

// EtcdConfig configures the embedded etcd member.
type EtcdConfig struct {
	// Dir holds the member's data (WAL and snapshots).
	Dir string
	// ClientAddr is host:port for clients; port 0 picks a free port.
	ClientAddr string
	// PeerAddr is host:port for peers; port 0 picks a free port.
	PeerAddr string
	// Fast shortens heartbeat and election timing (tests).
	Fast bool
	// StartTimeout bounds the wait for the member to become ready.
	StartTimeout time.Duration
}

// Etcd is a running embedded etcd member.
type Etcd struct {
	e         *embed.Etcd
	endpoints []string
}

// StartEtcd starts an embedded single-member etcd cluster and waits until
// it serves requests. A restart on the same Dir finds all data again.
//
// A port 0 is resolved by probing for a free port, which another process
// can take before etcd binds it; such a start is retried on new ports.
func StartEtcd(ctx context.Context, cfg EtcdConfig) (*Etcd, error) {
	for attempt := 1; ; attempt++ {
		e, err := startEtcd(ctx, cfg)
		if err == nil || attempt == 5 || !errors.Is(err, syscall.EADDRINUSE) || !anyPortZero(cfg) {
			return e, err
		}
	}
}

func anyPortZero(cfg EtcdConfig) bool {
	for _, a := range []string{cfg.ClientAddr, cfg.PeerAddr} {
		if _, port, err := net.SplitHostPort(a); a == "" || (err == nil && port == "0") {
			return true
		}
	}
	return false
}

func startEtcd(ctx context.Context, cfg EtcdConfig) (*Etcd, error) {
	if cfg.Dir == "" {
		return nil, errors.New("etcd dir is required")
	}
	if cfg.ClientAddr == "" {
		cfg.ClientAddr = "127.0.0.1:0"
	}
	if cfg.PeerAddr == "" {
		cfg.PeerAddr = "127.0.0.1:0"
	}
	if cfg.StartTimeout == 0 {
		cfg.StartTimeout = 30 * time.Second
	}
	clientURL, err := freeURL(cfg.ClientAddr)
	if err != nil {
		return nil, fmt.Errorf("etcd client address %q: %w", cfg.ClientAddr, err)
	}
	peerURL, err := freeURL(cfg.PeerAddr)
	if err != nil {
		return nil, fmt.Errorf("etcd peer address %q: %w", cfg.PeerAddr, err)
	}

	ec := embed.NewConfig()
	ec.Name = "bmaas"
	ec.Dir = filepath.Clean(cfg.Dir)
	ec.ListenClientUrls = []url.URL{*clientURL}
	ec.AdvertiseClientUrls = []url.URL{*clientURL}
	ec.ListenPeerUrls = []url.URL{*peerURL}
	ec.AdvertisePeerUrls = []url.URL{*peerURL}
	ec.InitialCluster = ec.InitialClusterFromName(ec.Name)
	ec.Logger = "zap"
	ec.LogLevel = "error"
	ec.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	if cfg.Fast {
		ec.TickMs = 10
		ec.ElectionMs = 100
	}
	e, err := embed.StartEtcd(ec)
	if err != nil {
		return nil, fmt.Errorf("start etcd: %w", err)
	}
	timer := time.NewTimer(cfg.StartTimeout)
	defer timer.Stop()
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		e.Close()
		return nil, fmt.Errorf("etcd: %w", err)
	case <-timer.C:
		e.Close()
		return nil, fmt.Errorf("etcd not ready after %s", cfg.StartTimeout)
	case <-ctx.Done():
		e.Close()
		return nil, ctx.Err()
	}
	eps := make([]string, 0, len(e.Clients))
	for _, l := range e.Clients {
		eps = append(eps, "http://"+l.Addr().String())
	}
	return &Etcd{e: e, endpoints: eps}, nil
}

// Endpoints are the client URLs of the member.
func (e *Etcd) Endpoints() []string { return e.endpoints }

// Err reports a fatal error of the running member.
func (e *Etcd) Err() <-chan error { return e.e.Err() }

// Close stops the member.
func (e *Etcd) Close() { e.e.Close() }

// freeURL resolves a host:port with port 0 to a free port on that host.
func freeURL(addr string) (*url.URL, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	if port == "0" {
		l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
		if err != nil {
			return nil, err
		}
		addr = l.Addr().String()
		if err := l.Close(); err != nil {
			return nil, err
		}
	}
	return url.Parse("http://" + addr)
}

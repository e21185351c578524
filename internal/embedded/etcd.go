// Package embedded runs an in-process etcd member and an in-process NATS
// server with JetStream, for `bmaas up` and for the integration-test
// harness. It is the only package that imports the etcd server.
package embedded

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"go.etcd.io/etcd/server/v3/embed"
	"go.etcd.io/etcd/server/v3/etcdserver/api/v3client"
	"golang.org/x/crypto/bcrypt"
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
	// SocketDir, when set, puts the client and peer listeners on unix
	// sockets in this directory (ClientAddr and PeerAddr are then unused):
	// only who may enter the directory can connect.
	SocketDir string
	// RootPassword, when set, turns etcd's authentication on with a root
	// user of this password (created on the first start).
	RootPassword string
	// Logger takes the member's warnings and errors (its informational
	// lines too when it takes debug records); nil drops them.
	Logger *slog.Logger
}

// RootUser is the embedded etcd's user when RootPassword is set.
const RootUser = "root"

// Etcd is a running embedded etcd member.
type Etcd struct {
	e         *embed.Etcd
	endpoints []string
	closeOnce sync.Once
}

// StartEtcd starts an embedded single-member etcd cluster and waits until
// it serves requests. A restart on the same Dir finds all data again.
//
// A port 0 is resolved by probing for a free port, which another process
// can take before etcd binds it; such a start is retried on new ports.
func StartEtcd(ctx context.Context, cfg EtcdConfig) (*Etcd, error) {
	for attempt := 1; ; attempt++ {
		e, err := startEtcd(ctx, cfg)
		if err == nil || attempt == 5 || !errors.Is(err, syscall.EADDRINUSE) || cfg.SocketDir != "" || !anyPortZero(cfg) {
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
	clientURL, peerURL, err := listenURLs(cfg)
	if err != nil {
		return nil, err
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
	ec.LogLevel = "info"
	ec.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zapLogger(cfg.Logger))
	if cfg.Fast {
		ec.TickMs = 10
		ec.ElectionMs = 100
	}
	// The root password is 256 random bits: bcrypt's cost adds nothing to
	// it and would slow every client's sign-in.
	ec.BcryptCost = uint(bcrypt.MinCost)
	e, err := startEmbed(ctx, ec)
	if err != nil {
		return nil, err
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
		if l.Addr().Network() == "unix" {
			eps = append(eps, "unix://"+l.Addr().String())
		} else {
			eps = append(eps, "http://"+l.Addr().String())
		}
	}
	if cfg.RootPassword != "" {
		if err := enableAuth(ctx, e, cfg.RootPassword); err != nil {
			e.Close()
			return nil, err
		}
	}
	return &Etcd{e: e, endpoints: eps}, nil
}

// startEmbed runs embed.StartEtcd, which takes no context and can block
// for ever (bbolt waits for its database's file lock without a timeout),
// and returns when ctx ends; the member, should it start after all, is
// closed then.
func startEmbed(ctx context.Context, ec *embed.Config) (*embed.Etcd, error) {
	type result struct {
		e   *embed.Etcd
		err error
	}
	done := make(chan result, 1)
	go func() {
		e, err := embed.StartEtcd(ec)
		done <- result{e, err}
	}()
	select {
	case r := <-done:
		if r.err != nil {
			return nil, fmt.Errorf("start etcd: %w", r.err)
		}
		return r.e, nil
	case <-ctx.Done():
		go func() {
			if r := <-done; r.err == nil {
				r.e.Close()
			}
		}()
		return nil, fmt.Errorf("start etcd: %w", ctx.Err())
	}
}

// listenURLs are the client and peer URLs: unix sockets in SocketDir, or
// loopback addresses with free ports.
func listenURLs(cfg EtcdConfig) (*url.URL, *url.URL, error) {
	if cfg.SocketDir != "" {
		if err := os.MkdirAll(cfg.SocketDir, 0o700); err != nil {
			return nil, nil, fmt.Errorf("etcd socket directory: %w", err)
		}
		if err := os.Chmod(cfg.SocketDir, 0o700); err != nil {
			return nil, nil, fmt.Errorf("etcd socket directory: %w", err)
		}
		client := &url.URL{Scheme: "unix", Path: filepath.Join(cfg.SocketDir, "etcd.sock")}
		peer := &url.URL{Scheme: "unix", Path: filepath.Join(cfg.SocketDir, "etcd-peer.sock")}
		if n := len(peer.Path); n > MaxSocketPath {
			return nil, nil, fmt.Errorf("etcd socket %s: %d bytes, over the %d a unix socket path may have", peer.Path, n, MaxSocketPath)
		}
		return client, peer, nil
	}
	clientURL, err := freeURL(cfg.ClientAddr)
	if err != nil {
		return nil, nil, fmt.Errorf("etcd client address %q: %w", cfg.ClientAddr, err)
	}
	peerURL, err := freeURL(cfg.PeerAddr)
	if err != nil {
		return nil, nil, fmt.Errorf("etcd peer address %q: %w", cfg.PeerAddr, err)
	}
	return clientURL, peerURL, nil
}

// MaxSocketPath is the longest unix socket path (sun_path holds 108
// bytes with the final NUL on Linux, 104 on the BSDs).
const MaxSocketPath = 100

// enableAuth creates the root user and role and turns authentication on,
// through an in-process client, unless it is on already. What a client
// may have written before (through a socket only the owner can reach,
// on the first start only) is not trusted: every other user and role goes.
func enableAuth(ctx context.Context, e *embed.Etcd, password string) error {
	cli := v3client.New(e.Server)
	defer func() { _ = cli.Close() }()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	st, err := cli.AuthStatus(ctx)
	if err != nil {
		return fmt.Errorf("etcd auth status: %w", err)
	}
	if st.Enabled {
		return nil
	}
	if _, err := cli.UserAdd(ctx, RootUser, password); err != nil && !errors.Is(err, rpctypes.ErrUserAlreadyExist) {
		return fmt.Errorf("etcd root user: %w", err)
	}
	if _, err := cli.UserChangePassword(ctx, RootUser, password); err != nil {
		return fmt.Errorf("etcd root password: %w", err)
	}
	if _, err := cli.RoleAdd(ctx, RootUser); err != nil && !errors.Is(err, rpctypes.ErrRoleAlreadyExist) {
		return fmt.Errorf("etcd root role: %w", err)
	}
	if _, err := cli.UserGrantRole(ctx, RootUser, RootUser); err != nil {
		return fmt.Errorf("etcd root role: %w", err)
	}
	users, err := cli.UserList(ctx)
	if err != nil {
		return fmt.Errorf("etcd users: %w", err)
	}
	for _, u := range users.Users {
		if u != RootUser {
			if _, err := cli.UserDelete(ctx, u); err != nil {
				return fmt.Errorf("etcd user %s: %w", u, err)
			}
		}
	}
	roles, err := cli.RoleList(ctx)
	if err != nil {
		return fmt.Errorf("etcd roles: %w", err)
	}
	for _, r := range roles.Roles {
		if r != RootUser {
			if _, err := cli.RoleDelete(ctx, r); err != nil {
				return fmt.Errorf("etcd role %s: %w", r, err)
			}
		}
	}
	if _, err := cli.AuthEnable(ctx); err != nil {
		return fmt.Errorf("etcd auth enable: %w", err)
	}
	return nil
}

// Endpoints are the client URLs of the member.
func (e *Etcd) Endpoints() []string { return e.endpoints }

// Err reports a fatal error of the running member's listeners.
func (e *Etcd) Err() <-chan error { return e.e.Err() }

// Stopped is closed when the member's server stops: after Close, or on
// its own on a fatal error (a full disk, a corrupt WAL, a lost quorum).
func (e *Etcd) Stopped() <-chan struct{} { return e.e.Server.StopNotify() }

// Close stops the member; a second Close does nothing.
func (e *Etcd) Close() { e.closeOnce.Do(e.e.Close) }

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

// Package mesh dials bmaas services by name. Addresses come from the
// membership records the services keep in etcd (pkg/membership), through
// a gRPC resolver that follows them as replicas join and leave, and calls
// are spread over the replicas round-robin.
package mesh

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"sync"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/resolver"

	"github.com/bmaas/bmaas/pkg/membership"
)

// Scheme is the target scheme: bmaas:///<service>.
const Scheme = "bmaas"

// Dialer opens client connections to services, one per service, shared.
type Dialer struct {
	cli   *clientv3.Client
	log   *slog.Logger
	token string
	tls   *tls.Config
	met   *clientMetrics

	mu    sync.Mutex
	conns map[string]*grpc.ClientConn
}

// NewDialer returns a dialer resolving through cli. token, when set, is
// sent as a bearer token with every call.
func NewDialer(cli *clientv3.Client, token string, log *slog.Logger) *Dialer {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Dialer{cli: cli, log: log, token: token, conns: map[string]*grpc.ClientConn{}}
}

// WithTLS makes the dialer's connections TLS with cfg (the process's
// certificate as the client's, services verified against the cluster CA);
// call it before the first Conn. The bearer token then never travels in
// the clear.
func (d *Dialer) WithTLS(cfg *tls.Config) *Dialer {
	d.tls = cfg
	return d
}

// TLS is the dialer's TLS configuration (nil when off).
func (d *Dialer) TLS() *tls.Config {
	if d == nil {
		return nil
	}
	return d.tls
}

// Token is the bearer token the mesh's calls carry ("" when auth is
// off); servers outside the platform's own (model-server replicas)
// require it too.
func (d *Dialer) Token() string {
	if d == nil {
		return ""
	}
	return d.token
}

// Conn returns the shared connection to a service by its membership
// name (RegistryService, ...), without retries: the proxy's, which
// relays a caller's frames as they come (the caller retries). Services
// call each other through the typed clients (Registry, Scheduler, ...),
// whose connections retry.
func (d *Dialer) Conn(service string) (*grpc.ClientConn, error) { return d.conn(service, false) }

// conn returns the shared connection to service, with the retry policy
// or without.
func (d *Dialer) conn(service string, retry bool) (*grpc.ClientConn, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	key := service
	if retry {
		key += "+retry"
	}
	if c, ok := d.conns[key]; ok {
		return c, nil
	}
	opts := []grpc.DialOption{
		grpc.WithTransportCredentials(Credentials(d.tls)),
		grpc.WithResolvers(&builder{cli: d.cli, log: d.log}),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(16 << 20)),
	}
	if retry {
		opts = append(opts, grpc.WithDefaultServiceConfig(retryServiceConfig))
	} else {
		opts = append(opts, grpc.WithDefaultServiceConfig(roundRobin), grpc.WithDisableRetry())
	}
	opts = append(opts, d.met.interceptors(service)...)
	if d.token != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(bearerCreds{token: d.token, secure: d.tls != nil}))
	}
	c, err := grpc.NewClient(Scheme+":///"+service, opts...)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", service, err)
	}
	d.conns[key] = c
	return c, nil
}

// Close closes every connection.
func (d *Dialer) Close() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, c := range d.conns {
		_ = c.Close()
	}
	d.conns = map[string]*grpc.ClientConn{}
}

// Credentials are a connection's transport credentials: TLS with cfg, or
// none (plain TCP) when cfg is nil.
func Credentials(cfg *tls.Config) credentials.TransportCredentials {
	if cfg == nil {
		return insecure.NewCredentials()
	}
	return credentials.NewTLS(cfg)
}

// Bearer sends token as a bearer token with every call (also without
// TLS: on plain loopback, the zero-configuration default).
func Bearer(token string) credentials.PerRPCCredentials { return bearerCreds{token: token} }

// SecureBearer sends token only over TLS.
func SecureBearer(token string) credentials.PerRPCCredentials {
	return bearerCreds{token: token, secure: true}
}

type bearerCreds struct {
	token  string
	secure bool
}

func (b bearerCreds) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + b.token}, nil
}

func (b bearerCreds) RequireTransportSecurity() bool { return b.secure }

// builder resolves bmaas:///<service> from membership.
type builder struct {
	cli *clientv3.Client
	log *slog.Logger
}

func (b *builder) Scheme() string { return Scheme }

func (b *builder) Build(target resolver.Target, cc resolver.ClientConn, _ resolver.BuildOptions) (resolver.Resolver, error) {
	service := target.Endpoint()
	ctx, cancel := context.WithCancel(context.Background())
	r := &watcher{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		err := membership.Watch(ctx, b.cli, service, func(ms []membership.Member) {
			addrs := make([]resolver.Address, 0, len(ms))
			for _, m := range ms {
				if m.Addr != "" {
					// TLS verifies the host the member announced,
					// not the service's name in the target.
					host, _, err := net.SplitHostPort(m.Addr)
					if err != nil {
						host = m.Addr
					}
					addrs = append(addrs, resolver.Address{Addr: m.Addr, ServerName: host})
				}
			}
			if len(addrs) == 0 {
				cc.ReportError(fmt.Errorf("no %s replica is registered", service))
				return
			}
			if err := cc.UpdateState(resolver.State{Addresses: addrs}); err != nil {
				b.log.Debug("resolver update", "service", service, "err", err)
			}
		})
		if err != nil && ctx.Err() == nil {
			cc.ReportError(fmt.Errorf("watch %s members: %w", service, err))
		}
	}()
	return r, nil
}

type watcher struct {
	cancel context.CancelFunc
	done   chan struct{}
}

func (w *watcher) ResolveNow(resolver.ResolveNowOptions) {}

func (w *watcher) Close() {
	w.cancel()
	<-w.done
}

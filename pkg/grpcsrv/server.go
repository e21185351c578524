// Package grpcsrv is the gRPC server every bmaas process runs: one
// listener, one interceptor chain (panic recovery, metrics, logging,
// bearer-token auth, error mapping), OpenTelemetry tracing, the gRPC health
// service with a status per service, and server reflection.
package grpcsrv

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"
)

// Guard is what guards every call: pkg/iam's Guard.
type Guard interface {
	Unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error)
	Stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error
	// Check says whether the call in ctx comes from an identity.
	Check(ctx context.Context) error
}

// Config configures the server.
type Config struct {
	Addr string `yaml:"addr"`
	// TokenFile holds a bearer token; when set every call but health and
	// reflection must carry it.
	TokenFile string `yaml:"token_file"`
	// MaxRecvMsgBytes caps one received message.
	MaxRecvMsgBytes int `yaml:"max_recv_msg_bytes"`
	// ShutdownTimeout bounds the graceful drain.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
}

// RegisterFlags registers the flags with their defaults.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.Addr, "grpc-addr", "127.0.0.1:7070", "gRPC listen address")
	fs.StringVar(&c.TokenFile, "auth.token-file", "", "file holding the bearer token that clients must send (auth off when empty)")
	fs.IntVar(&c.MaxRecvMsgBytes, "grpc.max-recv-msg-bytes", 16<<20, "largest gRPC message accepted")
	fs.DurationVar(&c.ShutdownTimeout, "grpc.shutdown-timeout", 3*time.Second, "graceful shutdown deadline")
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		return fmt.Errorf("grpc-addr %q: %w", c.Addr, err)
	}
	if c.MaxRecvMsgBytes <= 0 {
		return errors.New("grpc.max-recv-msg-bytes: must be positive")
	}
	return nil
}

// Token reads the bearer token from TokenFile ("" when auth is off).
func (c *Config) Token() (string, error) {
	if c.TokenFile == "" {
		return "", nil
	}
	b, err := os.ReadFile(c.TokenFile)
	if err != nil {
		return "", fmt.Errorf("auth.token-file: %w", err)
	}
	token := strings.TrimSpace(string(b))
	if token == "" {
		return "", fmt.Errorf("auth.token-file %s: empty token", c.TokenFile)
	}
	return token, nil
}

// Deps are the server's dependencies.
type Deps struct {
	Logger         *slog.Logger
	Registerer     prometheus.Registerer
	TracerProvider trace.TracerProvider
	// TLS, when set, is the listener's TLS configuration (the process's
	// certificate; client certificates as it says).
	TLS *tls.Config
	// Token, when set, is the bearer token every call but health and
	// reflection must carry, in place of Config.TokenFile's.
	Token string
	// Guard, when set, authenticates, authorizes and audits every call
	// (pkg/iam's) in place of the bearer-token check.
	Guard Guard
	// UnknownService, when set, handles the calls of services this
	// server does not register (a proxy to the process that runs them);
	// the stream interceptors (metrics, recovery, auth) run first.
	UnknownService grpc.StreamHandler
}

// StreamWorkers is how many goroutines a server keeps to run calls: a
// call finds one whose stack has already grown instead of starting a
// goroutine and growing its stack (a tenth of the CPU of a busy proxy).
// Calls beyond it still get a goroutine of their own.
const StreamWorkers = 128

// Server is a gRPC server with health and reflection.
type Server struct {
	cfg    Config
	logger *slog.Logger
	grpc   *grpc.Server
	health *health.Server
	lis    net.Listener
}

// New builds the server and binds its listener (so the address is known
// before Serve, also when the port was 0).
func New(cfg Config, deps Deps) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	if deps.Registerer == nil {
		deps.Registerer = prometheus.NewRegistry()
	}
	token, err := cfg.Token()
	if err != nil {
		return nil, err
	}
	if deps.Token != "" {
		token = deps.Token
	}
	auth := authenticator{token: []byte(token)}
	check, unary, stream := auth.check, grpc.UnaryServerInterceptor(auth.unary), grpc.StreamServerInterceptor(auth.stream)
	if g := deps.Guard; g != nil {
		check = func(ctx context.Context, method string) error {
			if public(method) {
				return nil
			}
			if err := g.Check(ctx); err != nil {
				return status.Error(codes.Unauthenticated, "missing or invalid bearer token")
			}
			return nil
		}
		unary, stream = g.Unary, g.Stream
	}
	m, err := newMetrics(deps.Registerer)
	if err != nil {
		return nil, fmt.Errorf("grpc metrics: %w", err)
	}
	rc := &requestCheck{}
	opts := []grpc.ServerOption{
		// The proto codec, also passing a *RawFrame through (proxies).
		grpc.ForceServerCodecV2(serverCodec{Codec: NewCodec(), rc: rc}),
		grpc.MaxRecvMsgSize(cfg.MaxRecvMsgBytes),
		grpc.NumStreamWorkers(StreamWorkers),
		grpc.ChainUnaryInterceptor(observeUnary(m, deps.Logger), recoverUnary(deps.Logger), rc.unary(check), unary, mapUnary),
		grpc.ChainStreamInterceptor(observeStream(m, deps.Logger), recoverStream(deps.Logger), rc.stream, stream, mapStream),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 5 * time.Second, PermitWithoutStream: true}),
		grpc.InitialWindowSize(1 << 20),
		grpc.InitialConnWindowSize(4 << 20),
	}
	if deps.UnknownService != nil {
		opts = append(opts, grpc.UnknownServiceHandler(deps.UnknownService))
	}
	if deps.TLS != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(deps.TLS)))
	}
	if deps.TracerProvider != nil {
		opts = append(opts, grpc.StatsHandler(otelgrpc.NewServerHandler(otelgrpc.WithTracerProvider(deps.TracerProvider))))
	}
	lis, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", cfg.Addr, err)
	}
	s := &Server{cfg: cfg, logger: deps.Logger, grpc: grpc.NewServer(opts...), health: health.NewServer(), lis: lis}
	healthpb.RegisterHealthServer(s.grpc, s.health)
	reflection.Register(s.grpc)
	// The process as a whole is not serving until every module started.
	s.health.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	return s, nil
}

// GRPC is the server services register on.
func (s *Server) GRPC() *grpc.Server { return s.grpc }

// Addr is the bound listen address.
func (s *Server) Addr() string { return s.lis.Addr().String() }

// SetServing marks a service (by its full name, "" for the whole process)
// SERVING or NOT_SERVING in the health service.
func (s *Server) SetServing(service string, serving bool) {
	st := healthpb.HealthCheckResponse_NOT_SERVING
	if serving {
		st = healthpb.HealthCheckResponse_SERVING
	}
	s.health.SetServingStatus(service, st)
}

// Serve serves until Shutdown.
func (s *Server) Serve() error {
	if err := s.grpc.Serve(s.lis); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		return fmt.Errorf("grpc serve: %w", err)
	}
	return nil
}

// Shutdown marks everything NOT_SERVING, drains within the configured
// deadline and then stops hard (streams never end on their own).
func (s *Server) Shutdown(ctx context.Context) {
	s.health.Shutdown()
	timeout := s.cfg.ShutdownTimeout
	if timeout <= 0 {
		timeout = 3 * time.Second
	}
	done := make(chan struct{})
	go func() {
		s.grpc.GracefulStop()
		close(done)
	}()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		s.logger.Warn("graceful stop timed out", "after", timeout)
		s.grpc.Stop()
	case <-ctx.Done():
		s.grpc.Stop()
	}
}

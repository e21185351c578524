package grpcsrv

import (
	"context"
	"crypto/subtle"
	"log/slog"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/bmaas/bmaas/pkg/apierr"
	"github.com/bmaas/bmaas/pkg/authz"
)

// recoverUnary turns a panic in a handler into Internal.
func recoverUnary(logger *slog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (resp any, err error) {
		defer func() {
			if r := recover(); r != nil {
				logger.Error("panic in handler", "method", info.FullMethod, "panic", r, "stack", string(debug.Stack()))
				err = status.Error(codes.Internal, "internal error")
			}
		}()
		return h(ctx, req)
	}
}

func recoverStream(logger *slog.Logger) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) (err error) {
		defer func() {
			if r := recover(); r != nil {
				logger.Error("panic in handler", "method", info.FullMethod, "panic", r, "stack", string(debug.Stack()))
				err = status.Error(codes.Internal, "internal error")
			}
		}()
		return h(srv, ss)
	}
}

// metrics counts requests and times them by service, method and code.
// Only methods of the services compiled into the binary get labels of
// their own; any other name a caller sends counts under "unknown", so
// callers cannot grow the metrics.
type metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	// methods holds each known method's resolved children
	// (*methodMetrics), so a call does no label lookup.
	methods sync.Map
	unknown *methodMetrics
}

// methodMetrics are one method's OK counter and timer.
type methodMetrics struct {
	svc, method string
	ok          prometheus.Counter
	duration    prometheus.Observer
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bmaas_grpc_requests_total",
			Help: "gRPC requests handled, by service, method and status code.",
		}, []string{"service", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "bmaas_grpc_request_duration_seconds",
			Help:    "gRPC request handling time, by service and method.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"service", "method"}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.duration} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	m.unknown = m.children(unknownLabel, unknownLabel)
	return m, nil
}

const unknownLabel = "unknown"

// knownMethod reports whether a service of the binary's generated code
// has the method.
func knownMethod(svc, method string) bool {
	d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(svc))
	if err != nil {
		return false
	}
	sd, ok := d.(protoreflect.ServiceDescriptor)
	return ok && sd.Methods().ByName(protoreflect.Name(method)) != nil
}

func (m *metrics) children(svc, method string) *methodMetrics {
	return &methodMetrics{svc: svc, method: method, ok: m.requests.WithLabelValues(svc, method, codes.OK.String()),
		duration: m.duration.WithLabelValues(svc, method)}
}

func splitMethod(full string) (string, string) {
	full = strings.TrimPrefix(full, "/")
	if i := strings.LastIndexByte(full, '/'); i >= 0 {
		return full[:i], full[i+1:]
	}
	return "unknown", full
}

func (m *metrics) of(full string) *methodMetrics {
	if mm, ok := m.methods.Load(full); ok {
		return mm.(*methodMetrics)
	}
	svc, method := splitMethod(full)
	if !knownMethod(svc, method) {
		return m.unknown
	}
	v, _ := m.methods.LoadOrStore(full, m.children(svc, method))
	return v.(*methodMetrics)
}

func (m *metrics) observe(full string, start time.Time, err error) {
	mm := m.of(full)
	if err == nil {
		mm.ok.Inc()
	} else {
		m.requests.WithLabelValues(mm.svc, mm.method, status.Code(err).String()).Inc()
	}
	mm.duration.Observe(time.Since(start).Seconds())
}

// observeUnary records metrics and logs each call after error mapping.
func observeUnary(m *metrics, logger *slog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		start := time.Now()
		resp, err := h(ctx, req)
		m.observe(info.FullMethod, start, err)
		logCall(ctx, logger, info.FullMethod, start, err)
		return resp, err
	}
}

func observeStream(m *metrics, logger *slog.Logger) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
		start := time.Now()
		err := h(srv, ss)
		m.observe(info.FullMethod, start, err)
		logCall(ss.Context(), logger, info.FullMethod, start, err)
		return err
	}
}

func logCall(ctx context.Context, logger *slog.Logger, method string, start time.Time, err error) {
	code := status.Code(err)
	level := slog.LevelDebug
	switch code {
	case codes.OK, codes.Canceled, codes.NotFound, codes.AlreadyExists, codes.InvalidArgument,
		codes.FailedPrecondition, codes.Aborted, codes.Unauthenticated, codes.PermissionDenied, codes.ResourceExhausted:
	default:
		level = slog.LevelWarn
	}
	if !logger.Enabled(ctx, level) {
		return
	}
	attrs := []slog.Attr{slog.String("method", method), slog.String("code", code.String()), slog.Duration("took", time.Since(start))}
	if err != nil {
		attrs = append(attrs, slog.String("err", err.Error()))
	}
	logger.LogAttrs(ctx, level, "grpc call", attrs...)
}

// mapUnary converts domain errors to status codes (the one table in apierr).
func mapUnary(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	resp, err := h(ctx, req)
	return resp, apierr.ToStatus(err)
}

func mapStream(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	return apierr.ToStatus(h(srv, ss))
}

// publicMethods need no token: health checks and reflection.
func public(method string) bool { return authz.Public(method) }

// authenticator checks a bearer token in the authorization metadata.
type authenticator struct{ token []byte }

// AuthUnary refuses unary calls without the bearer token (health
// excepted), as the platform's server does; with an empty token it lets
// every call through. Servers built without New (model-server replicas)
// use it.
func AuthUnary(token string) grpc.UnaryServerInterceptor {
	return authenticator{token: []byte(token)}.unary
}

func (a authenticator) check(ctx context.Context, method string) error {
	if len(a.token) == 0 || public(method) {
		return nil
	}
	// ValueFromIncomingContext does not copy the whole metadata.
	for _, v := range metadata.ValueFromIncomingContext(ctx, "authorization") {
		if bearerMatches(v, a.token) {
			return nil
		}
	}
	return status.Error(codes.Unauthenticated, "missing or invalid bearer token")
}

// bearerMatches reports whether an authorization value carries token
// under the Bearer scheme, whose name is case-insensitive (RFC 7235).
func bearerMatches(v string, token []byte) bool {
	scheme, tok, ok := strings.Cut(strings.TrimSpace(v), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(strings.TrimLeft(tok, " ")), token) == 1
}

func (a authenticator) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	if err := a.check(ctx, info.FullMethod); err != nil {
		return nil, err
	}
	return h(ctx, req)
}

func (a authenticator) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	if err := a.check(ss.Context(), info.FullMethod); err != nil {
		return err
	}
	return h(srv, ss)
}

// Package replica is one model-server replica: a model version loaded
// from a file and served over KServe v2 gRPC and over the inference lane
// (pkg/lane), both behind the replica's own bearer token and, with TLS,
// taking only a bmaas process's certificate. Its gRPC server is the one
// every bmaas process runs (pkg/grpcsrv: interceptors, metrics, the health
// service), and it serves its Prometheus registry on GET /metrics of a
// port of its own. The trainer agent runs it as
// a sandboxed child process (`bmaas replica --config FILE`, Main here),
// or in its own process where no replica binary is configured (tests).
package replica

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/bmaas/bmaas/api/inference"
	"github.com/bmaas/bmaas/pkg/apierr"
	"github.com/bmaas/bmaas/pkg/grpcsrv"
	"github.com/bmaas/bmaas/pkg/lane"
	"github.com/bmaas/bmaas/pkg/serving"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Options are what one replica serves and how.
type Options struct {
	// ModelPath is the version's artifact; Format its serving format
	// (serving.FormatNative or serving.FormatONNX).
	ModelPath string
	Format    string
	// Name is the v2 model name (the deployment's); Version the registry's.
	Name    string
	Version int64
	// Batching merges concurrent requests into one model call.
	Batching serving.Batching
	// Classes and Logits say what the model's output means, from its
	// version's signature (serving.ClassesOf).
	Classes []string
	Logits  bool
	// ListenHost is the host both ports bind ("" for every interface).
	ListenHost string
	// GRPCPort is the gRPC port (0: a free one).
	GRPCPort int
	// Token is the bearer token both ports require.
	Token string
	// TLS, when set, serves the gRPC and lane ports over TLS.
	TLS *tls.Config
	// Logger logs the gRPC server's calls and panics; nil discards.
	Logger *slog.Logger
}

// Replica is a running replica.
type Replica struct {
	srv  *serving.Server
	g    *grpcsrv.Server
	ls   *lane.Server
	lane net.Listener
	// met serves /metrics over the replica's registry.
	met    *http.Server
	metLis net.Listener
	done   chan struct{}
}

// Start loads the model and serves it on three free ports: KServe v2 gRPC
// (the platform's gRPC server, pkg/grpcsrv: its interceptors, its metrics
// and the health service, SERVING once the model is loaded), the lane,
// and HTTP for GET /metrics (the process's Prometheus registry, public as
// on every bmaas server).
func Start(o Options) (*Replica, error) {
	if o.Token == "" {
		return nil, errors.New("replica: a token is required")
	}
	load := func() (*serving.Model, error) {
		return serving.Load(o.ModelPath, serving.Options{Name: o.Name, Version: o.Version, Format: o.Format, Batching: o.Batching,
			Classes: o.Classes, Logits: o.Logits})
	}
	m, err := load()
	if err != nil {
		return nil, fmt.Errorf("load %s version %d: %w", o.Name, o.Version, err)
	}
	srv := serving.NewServer(func(context.Context, string) (*serving.Model, error) { return load() }, m)
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	logger := o.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	g, err := grpcsrv.New(grpcsrv.Config{Addr: net.JoinHostPort(o.ListenHost, strconv.Itoa(o.GRPCPort)), MaxRecvMsgBytes: 64 << 20, ShutdownTimeout: DrainTimeout},
		grpcsrv.Deps{Logger: logger, Registerer: reg, TLS: o.TLS, Token: o.Token})
	if err != nil {
		srv.Close()
		return nil, fmt.Errorf("replica grpc server: %w", err)
	}
	r := &Replica{srv: srv, g: g, done: make(chan struct{})}
	for _, l := range []*net.Listener{&r.lane, &r.metLis} {
		if *l, err = net.Listen("tcp", net.JoinHostPort(o.ListenHost, "0")); err != nil {
			r.close()
			return nil, fmt.Errorf("replica listener: %w", err)
		}
	}
	laneLis := r.lane
	if o.TLS != nil {
		laneLis = tls.NewListener(laneLis, o.TLS)
	}
	inference.RegisterGRPCInferenceServiceServer(g.GRPC(), srv)
	g.SetServing("", true)
	g.SetServing(inference.GRPCInferenceService_ServiceDesc.ServiceName, true)
	r.ls = lane.NewServer(laneHandler(srv))
	r.ls.Token = o.Token
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	r.met = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = g.Serve() }()
	go func() { _ = r.met.Serve(r.metLis) }()
	go func() {
		defer close(r.done)
		_ = r.ls.Serve(laneLis)
	}()
	return r, nil
}

// close releases what a Start that failed half way holds.
func (r *Replica) close() {
	r.g.Shutdown(context.Background())
	for _, l := range []net.Listener{r.lane, r.metLis} {
		if l != nil {
			_ = l.Close()
		}
	}
	r.srv.Close()
}

// Ports are the bound gRPC and lane ports.
func (r *Replica) Ports() (grpcPort, lanePort int) {
	_, g, _ := net.SplitHostPort(r.g.Addr())
	p, _ := strconv.Atoi(g)
	return p, r.lane.Addr().(*net.TCPAddr).Port
}

// MetricsPort is the bound port of GET /metrics.
func (r *Replica) MetricsPort() int { return r.metLis.Addr().(*net.TCPAddr).Port }

// Addrs are the ports joined with host.
func (r *Replica) Addrs(host string) (string, string) {
	g, l := r.Ports()
	return net.JoinHostPort(host, strconv.Itoa(g)), net.JoinHostPort(host, strconv.Itoa(l))
}

// Shutdown marks the replica NOT_SERVING, drains the calls in flight
// until ctx ends (DrainTimeout at most), then stops.
func (r *Replica) Shutdown(ctx context.Context) {
	stopped := make(chan struct{})
	go func() { r.g.Shutdown(ctx); close(stopped) }()
	_ = r.ls.Shutdown(ctx)
	<-stopped
	_ = r.met.Shutdown(ctx)
	_ = r.met.Close()
	r.srv.Close()
}

// laneHandler answers ModelInfer on the lane as the gRPC server does: the
// same server, the same errors.
func laneHandler(srv *serving.Server) lane.Handler {
	return func(ctx context.Context, m lane.Method, req, out []byte) ([]byte, error) {
		if m != lane.MethodModelInfer {
			return out, status.Errorf(codes.Unimplemented, "lane method %d", m)
		}
		in := &inference.ModelInferRequest{}
		if err := proto.Unmarshal(req, in); err != nil {
			return out, status.Errorf(codes.InvalidArgument, "request: not a ModelInferRequest: %v", err)
		}
		resp, err := srv.ModelInfer(ctx, in)
		if err != nil {
			return out, apierr.ToStatus(err)
		}
		return proto.MarshalOptions{}.MarshalAppend(out, resp)
	}
}

// DrainTimeout bounds the drain of a replica told to stop.
const DrainTimeout = 3 * time.Second

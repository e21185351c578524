// Package replica is one model-server replica: a model version loaded
// from a file and served over KServe v2 gRPC and over the inference lane
// (pkg/lane), both behind the replica's own bearer token and, with TLS,
// taking only a bmaas process's certificate. The trainer agent runs it as
// a sandboxed child process (`bmaas replica --config FILE`, Main here),
// or in its own process where no replica binary is configured (tests).
package replica

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/bmaas/bmaas/api/inference"
	"github.com/bmaas/bmaas/pkg/apierr"
	"github.com/bmaas/bmaas/pkg/grpcsrv"
	"github.com/bmaas/bmaas/pkg/lane"
	"github.com/bmaas/bmaas/pkg/serving"
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
	// Token is the bearer token both ports require.
	Token string
	// TLS, when set, serves both ports over TLS.
	TLS *tls.Config
}

// Replica is a running replica.
type Replica struct {
	srv  *serving.Server
	g    *grpc.Server
	ls   *lane.Server
	grpc net.Listener
	lane net.Listener
	done chan struct{}
}

// Start loads the model and serves it on two free ports.
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
	lis, err := net.Listen("tcp", net.JoinHostPort(o.ListenHost, "0"))
	if err != nil {
		srv.Close()
		return nil, fmt.Errorf("replica listener: %w", err)
	}
	laneLis, err := net.Listen("tcp", net.JoinHostPort(o.ListenHost, "0"))
	if err != nil {
		srv.Close()
		_ = lis.Close()
		return nil, fmt.Errorf("replica lane listener: %w", err)
	}
	opts := []grpc.ServerOption{grpc.ChainUnaryInterceptor(recoverAndMap, grpcsrv.AuthUnary(o.Token)), grpc.MaxRecvMsgSize(64 << 20),
		grpc.NumStreamWorkers(grpcsrv.StreamWorkers)}
	r := &Replica{srv: srv, grpc: lis, lane: laneLis, done: make(chan struct{})}
	if o.TLS != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(o.TLS)))
		laneLis = tls.NewListener(laneLis, o.TLS)
	}
	r.g = grpc.NewServer(opts...)
	inference.RegisterGRPCInferenceServiceServer(r.g, srv)
	r.ls = lane.NewServer(laneHandler(srv))
	r.ls.Token = o.Token
	go func() { _ = r.g.Serve(lis) }()
	go func() {
		defer close(r.done)
		_ = r.ls.Serve(laneLis)
	}()
	return r, nil
}

// Ports are the bound gRPC and lane ports.
func (r *Replica) Ports() (grpcPort, lanePort int) {
	return r.grpc.Addr().(*net.TCPAddr).Port, r.lane.Addr().(*net.TCPAddr).Port
}

// Addrs are the ports joined with host.
func (r *Replica) Addrs(host string) (string, string) {
	g, l := r.Ports()
	return net.JoinHostPort(host, strconv.Itoa(g)), net.JoinHostPort(host, strconv.Itoa(l))
}

// Shutdown drains the calls in flight until ctx ends, then stops.
func (r *Replica) Shutdown(ctx context.Context) {
	stopped := make(chan struct{})
	go func() { r.g.GracefulStop(); close(stopped) }()
	_ = r.ls.Shutdown(ctx)
	select {
	case <-stopped:
	case <-ctx.Done():
		r.g.Stop()
	}
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

// recoverAndMap maps domain errors to status codes and turns a panic into
// Internal, as the platform's own server does.
func recoverAndMap(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (resp any, err error) {
	defer func() {
		if r := recover(); r != nil {
			resp, err = nil, status.Error(codes.Internal, "internal error")
		}
	}()
	resp, err = h(ctx, req)
	return resp, apierr.ToStatus(err)
}

// DrainTimeout bounds the drain of a replica told to stop.
const DrainTimeout = 3 * time.Second

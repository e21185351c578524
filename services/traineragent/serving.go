package traineragent

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	gatewayv1 "github.com/bmaas/bmaas/api/bmaas/gateway/v1"
	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
	schedulerv1 "github.com/bmaas/bmaas/api/bmaas/scheduler/v1"
	"github.com/bmaas/bmaas/api/inference"
	"github.com/bmaas/bmaas/pkg/apierr"
	"github.com/bmaas/bmaas/pkg/grpcsrv"
	"github.com/bmaas/bmaas/pkg/lane"
	"github.com/bmaas/bmaas/pkg/pki"
	"github.com/bmaas/bmaas/pkg/regclient"
	"github.com/bmaas/bmaas/pkg/serving"
	"github.com/bmaas/bmaas/pkg/store"
)

// EndpointKey is where a ready replica of a deployment is registered:
// /bmaas/v1/endpoints/<deployment>/<replica>, under the node's lease.
func EndpointKey(deployment, replica string) string {
	return store.Key("endpoints", deployment, replica)
}

// runServing runs one model-server replica: it downloads the version,
// loads it, serves KServe v2 gRPC on a free port of this node, registers
// its endpoint once ready, and serves until the assignment goes. A
// serving task never succeeds; it ends when its job is cancelled.
func (w *worker) runServing(sk *sink, rt *schedulerv1.ServingRuntime) (int64, error) {
	model := w.a.GetSpec().GetModel()
	v, path, err := w.downloadModel(model, rt.Version)
	if err != nil {
		return 0, err
	}
	m, err := serving.Load(path, serving.Options{Name: rt.Deployment, Version: rt.Version, Format: servingFormat(v.GetFormat()),
		Batching: serving.Batching{MaxBatchSize: int(rt.MaxBatchSize), MaxQueueDelay: time.Duration(rt.MaxQueueDelayMicros) * time.Microsecond}})
	if err != nil {
		return 0, fmt.Errorf("load %s version %d: %w", model, rt.Version, err)
	}
	srv := serving.NewServer(func(context.Context, string) (*serving.Model, error) {
		return serving.Load(path, serving.Options{Name: rt.Deployment, Version: rt.Version, Format: servingFormat(v.GetFormat())})
	}, m)
	defer srv.Close()
	// The replica is reached at the agent's advertised host; it listens
	// on loopback only when that host is a loopback address, else on
	// every interface (the advertised host may be a name or a NAT
	// address that no local interface carries).
	host, _, err := net.SplitHostPort(w.s.deps.Addr)
	if err != nil || host == "" || host == "::" || host == "0.0.0.0" {
		host = "127.0.0.1"
	}
	listen := ""
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		listen = host
	}
	lis, err := net.Listen("tcp", net.JoinHostPort(listen, "0"))
	if err != nil {
		return 0, fmt.Errorf("replica listener: %w", err)
	}
	laneLis, err := net.Listen("tcp", net.JoinHostPort(listen, "0"))
	if err != nil {
		_ = lis.Close()
		return 0, fmt.Errorf("replica lane listener: %w", err)
	}
	// Both ports ask for a token of this replica's own, which only its
	// endpoint record (in etcd) tells: the gateway sends it, no other
	// client has it, and the replica never holds the cluster's token.
	token, err := replicaToken()
	if err != nil {
		_ = lis.Close()
		_ = laneLis.Close()
		return 0, err
	}
	opts := []grpc.ServerOption{grpc.ChainUnaryInterceptor(replicaUnary, grpcsrv.AuthUnary(token)), grpc.MaxRecvMsgSize(64 << 20),
		grpc.NumStreamWorkers(grpcsrv.StreamWorkers)}
	if tc, err := w.replicaTLS(host); err != nil {
		_ = lis.Close()
		_ = laneLis.Close()
		return 0, err
	} else if tc != nil {
		// Over TLS only a bmaas process's certificate gets in: the
		// gateway, not a user.
		opts = append(opts, grpc.Creds(credentials.NewTLS(tc)))
		laneLis = tls.NewListener(laneLis, tc)
	}
	g := grpc.NewServer(opts...)
	inference.RegisterGRPCInferenceServiceServer(g, srv)
	go func() { _ = g.Serve(lis) }()
	ls := lane.NewServer(laneHandler(srv))
	ls.Token = token
	go func() { _ = ls.Serve(laneLis) }()
	port := func(l net.Listener) string { return strconv.Itoa(l.Addr().(*net.TCPAddr).Port) }
	addr, laneAddr := net.JoinHostPort(host, port(lis)), net.JoinHostPort(host, port(laneLis))
	sk.logf("serving %s version %d as %q on %s (lane %s)", model, rt.Version, rt.Deployment, addr, laneAddr)
	w.running()
	w.flush()
	key := EndpointKey(rt.Deployment, w.a.JobId)
	if err := w.registerEndpoint(key, &gatewayv1.Endpoint{Deployment: rt.Deployment, Replica: w.a.JobId, Model: model,
		Version: rt.Version, Address: addr, LaneAddress: laneAddr, Node: w.s.cfg.Node, Token: token}); err != nil {
		g.Stop()
		ls.Close()
		return 0, err
	}
	<-w.ctx.Done()
	// Leave the routing table first, then drain requests in flight.
	dctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	_, _ = w.s.cli.Delete(dctx, key)
	cancel()
	stopped := make(chan struct{})
	go func() { g.GracefulStop(); close(stopped) }()
	sctx, scancel := context.WithTimeout(context.Background(), w.s.cfg.StopGrace)
	defer scancel()
	_ = ls.Shutdown(sctx)
	select {
	case <-stopped:
	case <-sctx.Done():
		g.Stop()
	}
	return 0, nil
}

// laneHandler answers ModelInfer on the replica's inference lane as the
// gRPC server does: the same server, the same errors.
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

// downloadModel writes the version's artifact into the task directory.
func (w *worker) downloadModel(model string, version int64) (*registryv1.ModelVersion, string, error) {
	ctx, cancel := contextFor(w)
	defer cancel()
	st, err := w.s.registry().c.DownloadModelVersion(ctx, &registryv1.DownloadModelVersionRequest{Model: model,
		Version: strconv.FormatInt(version, 10)}, waitReady)
	if err != nil {
		return nil, "", fmt.Errorf("download %s version %d: %w", model, version, err)
	}
	path := filepath.Join(w.dir, "model")
	f, err := os.Create(path)
	if err != nil {
		return nil, "", err
	}
	defer f.Close()
	var head *registryv1.ModelVersion
	err = regclient.RecvAll(func() ([]byte, error) {
		m, err := st.Recv()
		if hv := m.GetVersion(); hv != nil {
			head = hv
		}
		return m.GetChunk(), err
	}, f)
	if err != nil {
		return nil, "", fmt.Errorf("download %s version %d: %w", model, version, err)
	}
	return head, path, f.Close()
}

// registerEndpoint puts the endpoint under the node's lease, so that it
// vanishes with the node.
func (w *worker) registerEndpoint(key string, ep *gatewayv1.Endpoint) error {
	b, err := proto.Marshal(ep)
	if err != nil {
		return err
	}
	w.s.mu.Lock()
	lease := w.s.lease
	w.s.mu.Unlock()
	var opts []clientv3.OpOption
	if lease != 0 {
		opts = append(opts, clientv3.WithLease(lease))
	}
	ctx, cancel := context.WithTimeout(w.ctx, 10*time.Second)
	defer cancel()
	if _, err := w.s.cli.Put(ctx, key, string(b), opts...); err != nil {
		return fmt.Errorf("register endpoint %s: %w", key, err)
	}
	return nil
}

// replicaTLS is the TLS of a replica's ports (nil when TLS is off): a
// certificate of its own for host from the cluster CA when the agent
// holds the CA's key, else the process's own.
func (w *worker) replicaTLS(host string) (*tls.Config, error) {
	r := w.s.deps.TLS
	if r == nil {
		return nil, nil
	}
	if w.s.deps.CA == nil {
		return r.ReplicaServerConfig(nil), nil
	}
	leaf := pki.Renewing(func() (*pki.Issued, error) {
		return w.s.deps.CA.Issue(pki.Leaf{CommonName: "replica " + w.a.JobId, Hosts: []string{host},
			URIs: []string{pki.NodeURI(w.s.cfg.Node) + "/replica/" + w.a.JobId}, Server: true, TTL: replicaCertTTL})
	})
	if _, err := leaf(); err != nil {
		return nil, fmt.Errorf("replica certificate: %w", err)
	}
	return r.ReplicaServerConfig(leaf), nil
}

// replicaCertTTL is how long a replica's own certificate lasts.
const replicaCertTTL = 30 * 24 * time.Hour

// replicaToken is a new random token for one replica.
func replicaToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("replica token: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

func servingFormat(f registryv1.ModelFormat) string {
	if f == registryv1.ModelFormat_MODEL_FORMAT_ONNX {
		return serving.FormatONNX
	}
	return serving.FormatNative
}

// replicaUnary maps domain errors to status codes and turns a panic into
// Internal, as the platform's own server does.
func replicaUnary(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (resp any, err error) {
	defer func() {
		if r := recover(); r != nil {
			resp, err = nil, status.Error(codes.Internal, "internal error")
		}
	}()
	resp, err = h(ctx, req)
	return resp, apierr.ToStatus(err)
}

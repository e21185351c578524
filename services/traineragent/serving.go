package traineragent

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"net"
	"time"

	gatewayv1 "github.com/bmaas/bmaas/api/bmaas/gateway/v1"
	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
	schedulerv1 "github.com/bmaas/bmaas/api/bmaas/scheduler/v1"
	"github.com/bmaas/bmaas/pkg/iam"
	"github.com/bmaas/bmaas/pkg/pki"
	"github.com/bmaas/bmaas/pkg/replica"
	"github.com/bmaas/bmaas/pkg/serving"
	"github.com/bmaas/bmaas/services/traineragent/endpointkeys"
)

// runServing runs one model-server replica: it downloads the version,
// serves it (pkg/replica) on two free ports of this node, registers its
// endpoint once ready, and serves until the assignment goes. The replica
// is a sandboxed child process (`bmaas replica`, see replicaproc.go) when
// a replica binary is configured, else it runs in the agent's process. A
// serving task never succeeds; it ends when its job is cancelled.
func (w *worker) runServing(sk *sink, rt *schedulerv1.ServingRuntime) (int64, error) {
	if rt.GetServer() != nil {
		return w.runProcessServer(sk, rt) // a runtime's own server (runtimeproc.go)
	}
	model := w.a.GetSpec().GetModel()
	v, path, err := w.downloadModel(model, rt.Version)
	if err != nil {
		return 0, err
	}
	// Both ports ask for a token of this replica's own, which only its
	// endpoint record (in etcd) tells: the gateway sends it, no other
	// client has it, and the replica never holds the cluster's token.
	token, err := replicaToken()
	if err != nil {
		return 0, err
	}
	host, listen := w.replicaHost()
	// A replica serves its deployment's bare name (pkg/serving finds it
	// by its qualified one too).
	_, name := iam.SplitName(rt.Deployment)
	o := replica.Options{ModelPath: path, Format: servingFormat(v.GetFormat()), Name: name, Version: rt.Version,
		ListenHost: listen, Token: token, Batching: serving.Batching{MaxBatchSize: int(rt.MaxBatchSize),
			MaxQueueDelay: time.Duration(rt.MaxQueueDelayMicros) * time.Microsecond}}
	o.Classes, o.Logits = serving.ClassesOf(v.GetSignature())
	start := w.startReplicaInProcess
	if ok, _ := w.s.replicaProcesses(); ok {
		start = w.startReplicaProcess
	}
	run, err := start(sk, o, host)
	if err != nil {
		return 0, err
	}
	sk.logf("serving %s version %d as %q on %s (lane %s)", model, rt.Version, rt.Deployment, run.addr, run.laneAddr)
	w.running()
	w.flush()
	key := endpointkeys.Key(rt.Deployment, w.a.JobId)
	if err := w.registerEndpoint(key, &gatewayv1.Endpoint{Deployment: rt.Deployment, Replica: w.a.JobId, Model: model,
		Version: rt.Version, Address: run.addr, LaneAddress: run.laneAddr, Node: w.s.cfg.Node, Token: token}); err != nil {
		run.stop()
		return 0, err
	}
	var exitErr error
	select {
	case <-w.ctx.Done():
	case exitErr = <-run.exited:
	}
	// Leave the routing table first (within the replica drain), then
	// drain requests in flight (within the stop grace).
	dctx, cancel := context.WithTimeout(context.Background(), w.s.cfg.ReplicaDrain)
	_ = w.s.deleteUnderLease(dctx, key)
	cancel()
	if exitErr != nil {
		return 0, exitErr
	}
	run.stop()
	return 0, nil
}

// replicaRun is a started replica: where it serves, how to stop it
// (draining within the grace period), and, for a process, its unexpected
// end.
type replicaRun struct {
	addr, laneAddr string
	stop           func()
	exited         <-chan error
}

// replicaHost is the host a replica is reached at (the agent's advertised
// host) and the one it listens on: loopback only when that host is a
// loopback address, else every interface (the advertised host may be a
// name or a NAT address that no local interface carries).
func (w *worker) replicaHost() (host, listen string) {
	host, _, err := net.SplitHostPort(w.s.deps.Addr)
	if err != nil || host == "" || host == "::" || host == "0.0.0.0" {
		host = "127.0.0.1"
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		listen = host
	}
	return host, listen
}

// startReplicaInProcess serves the replica inside the agent's process.
func (w *worker) startReplicaInProcess(_ *sink, o replica.Options, host string) (*replicaRun, error) {
	tc, err := w.replicaTLS(host)
	if err != nil {
		return nil, err
	}
	o.TLS = tc
	r, err := replica.Start(o)
	if err != nil {
		return nil, err
	}
	addr, laneAddr := r.Addrs(host)
	return &replicaRun{addr: addr, laneAddr: laneAddr, exited: make(chan error), stop: func() {
		ctx, cancel := context.WithTimeout(context.Background(), w.s.cfg.StopGrace)
		defer cancel()
		r.Shutdown(ctx)
	}}, nil
}

// registerEndpoint puts the endpoint under the node's lease, so that it
// vanishes with the node.
func (w *worker) registerEndpoint(key string, ep *gatewayv1.Endpoint) error {
	b, err := endpointkeys.Encode(ep)
	if err != nil {
		return fmt.Errorf("register endpoint %s: %w", key, err)
	}
	ctx, cancel := context.WithTimeout(w.ctx, 10*time.Second)
	defer cancel()
	if err := w.s.putUnderLease(ctx, key, string(b)); err != nil {
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
	leaf := pki.Renewing(func() (*pki.Issued, error) { return w.s.deps.CA.Issue(w.replicaLeaf(host)) })
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

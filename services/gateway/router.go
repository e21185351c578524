package gateway

import (
	"context"
	"crypto/tls"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"

	gatewayv1 "github.com/bmaas/bmaas/api/bmaas/gateway/v1"
	"github.com/bmaas/bmaas/api/inference"
	"github.com/bmaas/bmaas/pkg/lane"
	"github.com/bmaas/bmaas/pkg/mesh"
	"github.com/bmaas/bmaas/pkg/runtimes"
	"github.com/bmaas/bmaas/services/traineragent/endpointkeys"
)

// backend is one ready replica as the router sees it.
type backend struct {
	key  string
	ep   *gatewayv1.Endpoint
	conn *grpc.ClientConn
	cli  inference.GRPCInferenceServiceClient
	// lane, when the replica advertises one, carries ModelInfer.
	lane *lane.Client
	// http, for a replica that speaks HTTP (v2-rest, openai): without
	// v2-grpc it carries every call (conn and cli are nil then); beside
	// v2-grpc it carries the calls only HTTP can (the OpenAI routes, v2
	// REST passed through).
	http     *httpReplica
	inflight atomic.Int64
}

// router keeps the ready endpoints of every deployment, from etcd, with
// one client connection (and one lane client) per replica address and
// token, or one HTTP client per HTTP address and token for a replica
// that speaks HTTP and not gRPC. Each replica is called with its own
// token from its endpoint record, never the cluster's: a listener that
// is not a replica of this cluster learns nothing it could use
// elsewhere.
type router struct {
	cli     *clientv3.Client
	log     *slog.Logger
	useLane bool
	// tls, when set, is the TLS of the calls to replicas: the process's
	// certificate as the client's, the replica verified against the
	// cluster CA.
	tls   *tls.Config
	ready chan struct{}
	once  sync.Once

	mu      sync.RWMutex
	byDep   map[string][]*backend
	conns   map[string]*grpc.ClientConn
	lanes   map[string]*lane.Client
	https   map[string]*httpReplica
	unused  map[string]time.Time // address -> when its last endpoint went
	changed chan struct{}
}

// closeAfter is how long the connections of a replica that left the
// routing table stay open: calls already sent on them finish.
const closeAfter = time.Minute

func newRouter(cli *clientv3.Client, log *slog.Logger, useLane bool, tlsCfg *tls.Config) *router {
	return &router{cli: cli, log: log, useLane: useLane, tls: tlsCfg, ready: make(chan struct{}), byDep: map[string][]*backend{},
		conns: map[string]*grpc.ClientConn{}, lanes: map[string]*lane.Client{}, https: map[string]*httpReplica{}, unused: map[string]time.Time{},
		changed: make(chan struct{})}
}

// run lists the endpoints and follows their changes until ctx is done.
func (r *router) run(ctx context.Context) {
	for ctx.Err() == nil {
		resp, err := r.cli.Get(ctx, endpointkeys.Prefix, clientv3.WithPrefix())
		if err != nil {
			time.Sleep(200 * time.Millisecond)
			continue
		}
		r.mu.Lock()
		r.byDep = map[string][]*backend{}
		for _, kv := range resp.Kvs {
			r.putLocked(string(kv.Key), kv.Value)
		}
		r.broadcastLocked()
		r.mu.Unlock()
		r.once.Do(func() { close(r.ready) })
		wch := r.cli.Watch(clientv3.WithRequireLeader(ctx), endpointkeys.Prefix, clientv3.WithPrefix(), clientv3.WithRev(resp.Header.Revision+1))
		for wr := range wch {
			if wr.Err() != nil {
				break
			}
			r.mu.Lock()
			for _, ev := range wr.Events {
				if ev.Type == clientv3.EventTypeDelete {
					r.deleteLocked(string(ev.Kv.Key))
				} else {
					r.putLocked(string(ev.Kv.Key), ev.Kv.Value)
				}
			}
			r.broadcastLocked()
			r.mu.Unlock()
		}
	}
}

func (r *router) putLocked(key string, val []byte) {
	dep, _, ok := endpointkeys.Parse(key)
	if !ok {
		r.log.Warn("bad endpoint key", "key", key)
		return
	}
	ep, err := endpointkeys.Decode(val)
	if err != nil {
		r.log.Warn("bad endpoint", "key", key, "err", err)
		return
	}
	if bridged(ep) {
		if ep.HttpAddress == "" {
			r.log.Warn("bad endpoint", "key", key, "err", "speaks HTTP only and has no http_address")
			return
		}
		hk := connKey(ep.HttpAddress, ep.Token)
		h := r.https[hk]
		if h == nil {
			h = newHTTPReplica(ep.HttpAddress, ep.Token)
			r.https[hk] = h
		}
		r.deleteLocked(key)
		r.byDep[dep] = append(r.byDep[dep], &backend{key: key, ep: ep, http: h})
		delete(r.unused, hk)
		return
	}
	addr, laneAddr := connKey(ep.Address, ep.Token), connKey(ep.LaneAddress, ep.Token)
	conn := r.conns[addr]
	if conn == nil {
		bearer := mesh.Bearer(ep.Token)
		if r.tls != nil {
			bearer = mesh.SecureBearer(ep.Token)
		}
		opts := []grpc.DialOption{grpc.WithTransportCredentials(mesh.Credentials(r.tls)),
			grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64 << 20)), grpc.WithPerRPCCredentials(bearer)}
		c, err := grpc.NewClient(ep.Address, opts...)
		if err != nil {
			r.log.Warn("dial replica", "addr", ep.Address, "err", err)
			return
		}
		conn = c
		r.conns[addr] = c
	}
	var lc *lane.Client
	if r.useLane && ep.LaneAddress != "" {
		if lc = r.lanes[laneAddr]; lc == nil {
			lc = lane.NewClient(ep.LaneAddress, ep.Token)
			lc.TLS = r.tls
			r.lanes[laneAddr] = lc
		}
	}
	// A replica that speaks v2 gRPC and HTTP too (the OpenAI API, v2
	// REST) is reached over HTTP for what only HTTP carries.
	var h *httpReplica
	if ep.HttpAddress != "" && runtimes.SpeaksHTTP(ep.Protocols) {
		hk := connKey(ep.HttpAddress, ep.Token)
		if h = r.https[hk]; h == nil {
			h = newHTTPReplica(ep.HttpAddress, ep.Token)
			r.https[hk] = h
		}
		delete(r.unused, hk)
	}
	r.deleteLocked(key)
	r.byDep[dep] = append(r.byDep[dep], &backend{key: key, ep: ep, conn: conn, cli: inference.NewGRPCInferenceServiceClient(conn), lane: lc, http: h})
	delete(r.unused, addr)
	delete(r.unused, laneAddr)
}

// connKey names a connection to a replica address with a token: a new
// replica on an old address gets a connection of its own.
func connKey(addr, token string) string {
	if addr == "" {
		return ""
	}
	return addr + "\x00" + token
}

func (r *router) deleteLocked(key string) {
	dep, _, ok := endpointkeys.Parse(key)
	if !ok {
		return
	}
	bs := r.byDep[dep]
	for i, b := range bs {
		if b.key == key {
			// Copy: pickers may hold the old slice.
			nb := make([]*backend, 0, len(bs)-1)
			nb = append(nb, bs[:i]...)
			r.byDep[dep] = append(nb, bs[i+1:]...)
			r.releaseLocked(b.ep)
			return
		}
	}
}

// releaseLocked marks ep's addresses unused when no endpoint has them
// any more, and closes the connections of addresses unused for
// closeAfter.
func (r *router) releaseLocked(ep *gatewayv1.Endpoint) {
	used := map[string]bool{}
	for _, bs := range r.byDep {
		for _, b := range bs {
			used[connKey(b.ep.Address, b.ep.Token)], used[connKey(b.ep.LaneAddress, b.ep.Token)] = true, true
			used[connKey(b.ep.HttpAddress, b.ep.Token)] = true
		}
	}
	now := time.Now()
	for _, a := range []string{connKey(ep.Address, ep.Token), connKey(ep.LaneAddress, ep.Token), connKey(ep.HttpAddress, ep.Token)} {
		if _, seen := r.unused[a]; a != "" && !used[a] && !seen {
			r.unused[a] = now
		}
	}
	for a, since := range r.unused {
		if used[a] {
			delete(r.unused, a)
			continue
		}
		if now.Sub(since) < closeAfter {
			continue
		}
		delete(r.unused, a)
		if c := r.conns[a]; c != nil {
			_ = c.Close()
			delete(r.conns, a)
		}
		if l := r.lanes[a]; l != nil {
			_ = l.Close()
			delete(r.lanes, a)
		}
		if h := r.https[a]; h != nil {
			h.close()
			delete(r.https, a)
		}
	}
}

func (r *router) broadcastLocked() {
	close(r.changed)
	r.changed = make(chan struct{})
}

// backends returns the ready replicas of a deployment and a channel
// closed at the next change.
func (r *router) backends(dep string) ([]*backend, <-chan struct{}) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.byDep[dep], r.changed
}

// pick chooses by power of two choices on outstanding requests among the
// replicas of version (any when 0), not of avoid, not tried yet.
func pick(bs []*backend, version, avoid int64, tried []*backend) *backend {
	var a, b *backend
	n := 0
	for _, c := range bs {
		if (version != 0 && c.ep.Version != version) || (avoid != 0 && c.ep.Version == avoid) || contains(tried, c) {
			continue
		}
		n++
		// Reservoir-sample two candidates.
		if a == nil {
			a = c
		} else if b == nil {
			b = c
		} else if k := rand.IntN(n); k < 2 {
			if k == 0 {
				a = c
			} else {
				b = c
			}
		}
	}
	if b != nil && b.inflight.Load() < a.inflight.Load() {
		return b
	}
	return a
}

func contains(bs []*backend, b *backend) bool {
	for _, x := range bs {
		if x == b {
			return true
		}
	}
	return false
}

func (r *router) close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range r.conns {
		_ = c.Close()
	}
	for _, l := range r.lanes {
		_ = l.Close()
	}
	for _, h := range r.https {
		h.close()
	}
	r.conns, r.lanes, r.https = map[string]*grpc.ClientConn{}, map[string]*lane.Client{}, map[string]*httpReplica{}
}

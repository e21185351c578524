package traineragent

import (
	"context"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	schedulerv1 "github.com/bmaas/bmaas/api/bmaas/scheduler/v1"
	"github.com/bmaas/bmaas/pkg/store"
)

func nodeKey(node string) string { return store.Key("nodes", node) }

// node is the record this agent registers.
func (s *Service) node() *schedulerv1.Node {
	n := &schedulerv1.Node{Name: s.cfg.Node, Address: s.deps.Addr, Host: s.cfg.Host, CpuMillis: s.cfg.CPUMillis,
		MemoryBytes: s.cfg.MemoryBytes, Labels: s.labels, Pool: s.cfg.Pool, RegisterTime: timestamppb.New(s.deps.Now())}
	for _, g := range s.gpus {
		n.Gpus = append(n.Gpus, &schedulerv1.Gpu{Index: int32(g.Index), Uuid: g.UUID, Model: g.Model,
			MemoryBytes: g.MemoryBytes, Fake: g.Fake})
	}
	return n
}

// runNode keeps the node registered under a lease until ctx is done. When
// the lease is lost (it lapsed or was revoked) every running worker is
// killed at once, since the scheduler now considers the node gone and
// places its work elsewhere; then the node registers again with a new lease.
func (s *Service) runNode(ctx context.Context) {
	delay := 100 * time.Millisecond
	for ctx.Err() == nil {
		ka, err := s.register(ctx)
		if err != nil {
			if ctx.Err() == nil {
				s.log.Warn("register node", "err", err)
			}
			if !sleep(ctx, delay) {
				return
			}
			delay = min(2*delay, s.cfg.LeaseTTL)
			continue
		}
		delay = 100 * time.Millisecond
		for range ka {
		}
		if ctx.Err() != nil {
			return
		}
		s.log.Warn("node lease lost; killing every worker")
		s.fence()
	}
}

// register puts the node record under a new lease and keeps it alive.
func (s *Service) register(ctx context.Context) (<-chan *clientv3.LeaseKeepAliveResponse, error) {
	rctx, cancel := context.WithTimeout(ctx, s.cfg.LeaseTTL)
	defer cancel()
	lease, err := s.cli.Grant(rctx, int64(max(1, s.cfg.LeaseTTL/time.Second)))
	if err != nil {
		return nil, err
	}
	b, err := proto.Marshal(s.node())
	if err != nil {
		return nil, err
	}
	if _, err := s.cli.Put(rctx, nodeKey(s.cfg.Node), string(b), clientv3.WithLease(lease.ID)); err != nil {
		return nil, err
	}
	ka, err := s.cli.KeepAlive(ctx, lease.ID)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.lease = lease.ID
	s.mu.Unlock()
	s.log.Info("node registered", "lease", int64(lease.ID), "gpus", len(s.gpus))
	return ka, nil
}

// fence kills every running worker at once and holds their assignments
// back for two lease TTLs: the scheduler is expected to move them; one it
// leaves here unchanged runs again afterwards.
func (s *Service) fence() {
	hold := s.deps.Now().Add(2 * s.cfg.LeaseTTL)
	s.mu.Lock()
	var keys []string
	for k, w := range s.workers {
		if w.finished() {
			continue
		}
		w.holdUntil = hold
		w.stop(true)
		keys = append(keys, k)
	}
	s.lease = 0
	s.mu.Unlock()
	if len(keys) > 0 {
		time.AfterFunc(2*s.cfg.LeaseTTL+50*time.Millisecond, func() {
			for _, k := range keys {
				select {
				case s.recheck <- k:
				case <-s.done:
					return
				}
			}
		})
	}
}

// releaseLease revokes the node's lease, so the scheduler sees the node
// leave at once rather than after the TTL.
func (s *Service) releaseLease(ctx context.Context) {
	s.mu.Lock()
	id := s.lease
	s.lease = 0
	s.mu.Unlock()
	if id != 0 {
		if _, err := s.cli.Revoke(ctx, id); err != nil {
			s.log.Warn("revoke node lease", "err", err)
		}
	}
}

// sleep waits d or until ctx is done; it reports whether ctx is still live.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

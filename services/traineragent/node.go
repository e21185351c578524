package traineragent

import (
	"context"
	"errors"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	schedulerv1 "github.com/bmaas/bmaas/api/bmaas/scheduler/v1"
	"github.com/bmaas/bmaas/pkg/membership"
	"github.com/bmaas/bmaas/services/scheduler/schedkeys"
)

// node is the record this agent registers.
func (s *Service) node() *schedulerv1.Node {
	n := &schedulerv1.Node{Name: s.cfg.Node, Address: s.deps.Addr, Host: s.cfg.Host, CpuMillis: s.cfg.CPUMillis,
		MemoryBytes: s.cfg.MemoryBytes, Labels: s.labels, Pool: s.cfg.Pool, RegisterTime: timestamppb.New(s.deps.Now())}
	for _, g := range s.gpus {
		n.Gpus = append(n.Gpus, &schedulerv1.Gpu{Index: int32(g.Index), Uuid: g.UUID, Model: g.Model,
			MemoryBytes: g.MemoryBytes, Fake: g.Fake})
	}
	fillGPUUsage(s.src, n.Gpus)
	return n
}

// runNode keeps the node registered under a lease until ctx is done.
//
// membership.KeepLease renews the lease (every fifth of its TTL, several
// renewals in flight), so one slow answer of a loaded etcd loses nothing.
// When the lease may be gone all the same:
//
//   - Apart from the scheduler (bmaas serve): once no renewal was answered
//     for a whole TTL, or etcd says the lease is gone, the scheduler may
//     move the node's work elsewhere, and this agent may no longer see its
//     assignments vanish: every worker is killed at once (self-fencing), no
//     later than etcd could have let the lease lapse. Then the node keeps
//     its lease if etcd answers again, or registers under a new one.
//   - In one process with etcd and the scheduler (bmaas up): the node
//     is never gone while the process lives, so the agent never fences
//     itself. Its lease lasts singleProcessLeaseTTL, and should etcd drop
//     it still (the process starved for that long) the node registers again
//     at once, with the keys held under its lease; the workers keep
//     running. The scheduler, in the same process, deletes the assignments
//     of a node it saw leave, and the agent's watch sees that as it sees
//     every deletion: it cannot be cut off from its own etcd.
func (s *Service) runNode(ctx context.Context) {
	delay := 100 * time.Millisecond
	first := true
	for ctx.Err() == nil {
		since := time.Now()
		lease, err := s.register(ctx, first)
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
		first = false
		delay = 100 * time.Millisecond
		fenced := false
		_ = membership.KeepLease(ctx, s.cli, lease, s.cfg.leaseTTL(), since, func(unsure bool) {
			switch {
			case !unsure:
				fenced = false
				s.log.Info("node lease renewals answered again")
			case s.cfg.SingleProcess:
				s.log.Warn("node lease renewals unanswered for a whole TTL; still renewing")
			default:
				fenced = true
				s.log.Warn("node lease renewals unanswered for a whole TTL; killing every worker")
				s.fence()
			}
		})
		if ctx.Err() != nil {
			return
		}
		s.mu.Lock()
		s.lease = 0
		s.mu.Unlock()
		switch {
		case s.cfg.SingleProcess:
			s.log.Warn("node lease lost; registering the node again, its workers keep running")
		case fenced:
			s.log.Warn("node lease lost; registering the node again")
		default:
			s.log.Warn("node lease lost; killing every worker")
			s.fence()
		}
	}
}

// singleProcessLeaseTTL is the node lease's TTL under bmaas up: a lapse
// there means only that the process starved, never that the agent is gone.
const singleProcessLeaseTTL = 30 * time.Second

// leaseTTL is the node lease's TTL.
func (c *Config) leaseTTL() time.Duration {
	if c.SingleProcess {
		return max(c.LeaseTTL, singleProcessLeaseTTL)
	}
	return c.LeaseTTL
}

// register puts the node record under a new lease, and the keys held
// under the node's lease (replica endpoints) with it. The first
// registration of a single process revokes the lease its predecessor (a
// crashed bmaas up on the same data directory) left, and so the keys
// that went with it.
func (s *Service) register(ctx context.Context, first bool) (clientv3.LeaseID, error) {
	ttl := s.cfg.leaseTTL()
	rctx, cancel := context.WithTimeout(ctx, ttl)
	defer cancel()
	s.keysMu.Lock()
	defer s.keysMu.Unlock()
	var prev clientv3.LeaseID
	if first && s.cfg.SingleProcess {
		resp, err := s.cli.Get(rctx, schedkeys.Node(s.cfg.Node))
		if err != nil {
			return 0, err
		}
		if len(resp.Kvs) == 1 {
			prev = clientv3.LeaseID(resp.Kvs[0].Lease)
		}
	}
	lease, err := s.cli.Grant(rctx, int64(max(1, ttl/time.Second)))
	if err != nil {
		return 0, err
	}
	b, err := proto.Marshal(s.node())
	if err != nil {
		return 0, err
	}
	if _, err := s.cli.Put(rctx, schedkeys.Node(s.cfg.Node), string(b), clientv3.WithLease(lease.ID)); err != nil {
		return 0, err
	}
	for k, v := range s.leaseKeys {
		if _, err := s.cli.Put(rctx, k, v, clientv3.WithLease(lease.ID)); err != nil {
			return 0, err
		}
	}
	if prev != 0 {
		if _, err := s.cli.Revoke(rctx, prev); err != nil && !errors.Is(err, rpctypes.ErrLeaseNotFound) {
			s.log.Warn("revoke the previous process's node lease", "err", err)
		}
	}
	s.mu.Lock()
	s.lease = lease.ID
	s.mu.Unlock()
	s.log.Info("node registered", "lease", int64(lease.ID), "gpus", len(s.gpus))
	return lease.ID, nil
}

// putUnderLease writes key under the node's lease, so that it vanishes
// with the node, and remembers it so that a new lease of the node carries
// it too. Before the node has a lease (or while it registers again) the
// key waits for it.
func (s *Service) putUnderLease(ctx context.Context, key, value string) error {
	s.keysMu.Lock()
	defer s.keysMu.Unlock()
	s.mu.Lock()
	lease := s.lease
	s.mu.Unlock()
	if lease != 0 {
		if _, err := s.cli.Put(ctx, key, value, clientv3.WithLease(lease)); err != nil &&
			!errors.Is(err, rpctypes.ErrLeaseNotFound) {
			return err
		}
	}
	s.leaseKeys[key] = value
	return nil
}

// deleteUnderLease deletes a key putUnderLease wrote.
func (s *Service) deleteUnderLease(ctx context.Context, key string) error {
	s.keysMu.Lock()
	defer s.keysMu.Unlock()
	delete(s.leaseKeys, key)
	_, err := s.cli.Delete(ctx, key)
	return err
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

package scheduler

import (
	"context"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/bmaas/bmaas/pkg/election"
)

// watchLeaders notes when another replica's leader key vanishes, so that
// a new leader can report how long the failover took.
func (s *Service) watchLeaders(ctx context.Context) {
	prefix := election.Prefix(electionService)
	for ctx.Err() == nil {
		wch := s.sched.cli.Watch(clientv3.WithRequireLeader(ctx), prefix, clientv3.WithPrefix(), clientv3.WithPrevKV())
		for wr := range wch {
			for _, ev := range wr.Events {
				if ev.Type != clientv3.EventTypeDelete || ev.PrevKv == nil || string(ev.PrevKv.Value) == s.id {
					continue
				}
				s.mu.Lock()
				s.goneAt = time.Now()
				s.mu.Unlock()
				select {
				case s.gone <- struct{}{}:
				default:
				}
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// firstPass is called when a new leader finished its first reconcile: if
// another leader's key vanished recently, the time since is the failover.
func (s *Service) firstPass(done time.Time) {
	window := 3 * s.cfg.LeaderTTL
	report := func() bool {
		s.mu.Lock()
		at := s.goneAt
		s.goneAt = time.Time{}
		s.mu.Unlock()
		if at.IsZero() || done.Sub(at) > window {
			return false
		}
		d := max(done.Sub(at), 0)
		s.sched.met.failover.Observe(d.Seconds())
		s.log.Info("failover", "duration", d)
		return true
	}
	if report() {
		return
	}
	// The vanishing may reach this watch after the election's own.
	go func() {
		select {
		case <-s.gone:
			report()
		case <-time.After(time.Second):
			s.log.Info("leading without a predecessor")
		}
	}()
}

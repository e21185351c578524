package traineragent

import (
	"context"
	"errors"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/protobuf/proto"

	schedulerv1 "github.com/bmaas/bmaas/api/bmaas/scheduler/v1"
	"github.com/bmaas/bmaas/pkg/election"
	"github.com/bmaas/bmaas/services/scheduler/schedkeys"
)

// watch follows the node's assignments and the scheduler's leader term
// until ctx is done, starting and stopping workers to match; on a watch
// error it lists everything again.
func (s *Service) watch(ctx context.Context) {
	for ctx.Err() == nil {
		err := s.watchOnce(ctx)
		if ctx.Err() != nil {
			return
		}
		s.log.Warn("assignment watch", "err", err)
		if !sleep(ctx, 200*time.Millisecond) {
			return
		}
	}
}

func (s *Service) watchOnce(ctx context.Context) error {
	s.refreshTerm(ctx)
	resp, err := s.cli.Get(ctx, schedkeys.AssignmentsOf(s.cfg.Node), clientv3.WithPrefix())
	if err != nil {
		return err
	}
	seen := map[string]bool{}
	for _, kv := range resp.Kvs {
		seen[string(kv.Key)] = true
		s.apply(kv)
	}
	s.mu.Lock()
	var gone []string
	for k := range s.workers {
		if !seen[k] {
			gone = append(gone, k)
		}
	}
	s.mu.Unlock()
	for _, k := range gone {
		s.remove(k)
	}
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	rev := resp.Header.Revision + 1
	assignments := s.cli.Watch(wctx, schedkeys.AssignmentsOf(s.cfg.Node), clientv3.WithPrefix(), clientv3.WithRev(rev))
	leader := s.cli.Watch(wctx, election.Prefix(schedkeys.Election), clientv3.WithPrefix(), clientv3.WithRev(rev))
	for {
		select {
		case <-ctx.Done():
			return nil
		case wr, ok := <-assignments:
			if !ok {
				return errors.New("assignment watch closed")
			}
			if err := wr.Err(); err != nil {
				return err
			}
			for _, ev := range wr.Events {
				if ev.Type == mvccpb.DELETE {
					s.remove(string(ev.Kv.Key))
				} else {
					s.apply(ev.Kv)
				}
			}
		case wr, ok := <-leader:
			if !ok {
				return errors.New("leader watch closed")
			}
			if err := wr.Err(); err != nil {
				return err
			}
			s.refreshTerm(ctx)
		case key := <-s.recheck:
			r, err := s.cli.Get(ctx, key)
			if err != nil {
				return err
			}
			if len(r.Kvs) == 0 {
				s.remove(key)
			} else {
				s.apply(r.Kvs[0])
			}
		}
	}
}

// refreshTerm raises the newest leader term seen to the current leader's.
func (s *Service) refreshTerm(ctx context.Context) {
	_, term, err := election.Leader(ctx, s.cli, schedkeys.Election)
	if err != nil {
		if !errors.Is(err, election.ErrNoLeader) && ctx.Err() == nil {
			s.log.Warn("read scheduler leader", "err", err)
		}
		return
	}
	s.mu.Lock()
	s.maxTerm = max(s.maxTerm, term)
	s.mu.Unlock()
}

// apply starts, keeps or restarts the worker of one assignment.
func (s *Service) apply(kv *mvccpb.KeyValue) {
	key := string(kv.Key)
	a := &schedulerv1.Assignment{}
	node, _, _, ok := schedkeys.ParseAssignment(key)
	if err := proto.Unmarshal(kv.Value, a); err != nil || a.GetJobId() == "" || !ok || node != s.cfg.Node {
		s.log.Warn("ignore malformed assignment", "key", key, "err", err)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if a.Term < s.maxTerm {
		s.log.Info("ignore assignment of a deposed leader", "job", a.JobId, "rank", a.Rank, "term", a.Term, "newest", s.maxTerm)
		return
	}
	s.maxTerm = a.Term
	w := s.workers[key]
	if w != nil {
		same := w.a.Attempt == a.Attempt && w.createRev == kv.CreateRevision
		switch {
		case same && !w.fenced.Load():
			w.setTerm(a.Term)
			return
		case same && kv.ModRevision == w.modRev && s.deps.Now().Before(w.holdUntil):
			return
		}
		w.stop(false)
	}
	nw := newWorker(s, key, a, kv.CreateRevision, kv.ModRevision)
	s.workers[key] = nw
	go nw.run(w)
}

// remove stops the worker of an assignment that vanished.
func (s *Service) remove(key string) {
	s.mu.Lock()
	w := s.workers[key]
	delete(s.workers, key)
	s.mu.Unlock()
	if w != nil {
		w.stop(false)
		go w.cleanup()
	}
}

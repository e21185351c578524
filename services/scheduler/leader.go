package scheduler

import (
	"context"
	"errors"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/bmaas/bmaas/pkg/election"
	"github.com/bmaas/bmaas/pkg/store"
	"github.com/bmaas/bmaas/services/scheduler/placement"
)

// leader is one term of leadership: the view and the fencing token.
type leader struct {
	*Scheduler
	term     int64
	fence    clientv3.Cmp // CreateRevision(leader key) == term
	v        *view
	strategy placement.Strategy
	// wantRev is the newest revision this leader wrote; the next pass
	// waits until the view has seen it.
	wantRev int64
}

// lead runs the reconcile loop while this replica leads.
func (s *Service) lead(ctx context.Context, term int64) {
	s.sched.met.leader.Set(1)
	defer s.sched.met.leader.Set(0)
	if err := s.leadTerm(ctx, term); err != nil && ctx.Err() == nil {
		s.log.Warn("leader loop", "term", term, "err", err)
	}
}

func (s *Service) leadTerm(ctx context.Context, term int64) error {
	fence, err := election.Fence(ctx, s.sched.cli, electionService, term)
	if err != nil {
		return err
	}
	v, err := loadView(ctx, s.sched.cli)
	if err != nil {
		return err
	}
	l := &leader{Scheduler: s.sched, term: term, v: v, fence: fence}
	if s.cfg.Scoring == "spread" {
		l.strategy = placement.Spread
	}
	from, to := watchRange()
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	wch := l.cli.Watch(clientv3.WithRequireLeader(wctx), from, clientv3.WithRange(to),
		clientv3.WithRev(v.rev+1), clientv3.WithProgressNotify())
	if err := l.restamp(ctx); err != nil {
		return err
	}
	if err := l.pass(ctx, true); err != nil {
		return err
	}
	s.firstPass(l.now())
	tick := time.NewTicker(s.cfg.Resync)
	defer tick.Stop()
	for {
		full := false
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			full = true
		case wr, ok := <-wch:
			if !ok {
				return errors.New("watch closed")
			}
			if err := l.take(wr); err != nil {
				return err
			}
		}
		// Take every response already waiting, and wait for our own writes.
		if err := l.catchUp(ctx, wch); err != nil {
			return err
		}
		if err := l.pass(ctx, full); err != nil {
			return err
		}
	}
}

func (l *leader) take(wr clientv3.WatchResponse) error {
	if err := wr.Err(); err != nil {
		return fmt.Errorf("watch: %w", err)
	}
	return l.v.apply(wr)
}

// catchUp drains the watch, and blocks until the view has seen every
// write of this leader (bounded: a lagging watch is asked for progress).
func (l *leader) catchUp(ctx context.Context, wch clientv3.WatchChan) error {
	var deadline <-chan time.Time
	for {
		select {
		case wr, ok := <-wch:
			if !ok {
				return errors.New("watch closed")
			}
			if err := l.take(wr); err != nil {
				return err
			}
			continue
		default:
		}
		if l.v.rev >= l.wantRev {
			return nil
		}
		if deadline == nil {
			_ = l.cli.RequestProgress(ctx)
			deadline = time.After(5 * time.Second)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-deadline:
			return errors.New("watch lags behind this leader's writes")
		case wr, ok := <-wch:
			if !ok {
				return errors.New("watch closed")
			}
			if err := l.take(wr); err != nil {
				return err
			}
		}
	}
}

// flush commits txns, merged into transactions of at most BatchOps
// operations, each fenced by the term. When a merged transaction fails a
// condition, its parts are tried one by one; a part whose object changed
// is dropped (the next pass sees the change). It publishes the events of
// what committed.
func (l *leader) flush(ctx context.Context, txns []*txn) error {
	for len(txns) > 0 {
		n, ops := 0, 0
		for n < len(txns) && (n == 0 || ops+len(txns[n].ops) <= l.cfg.BatchOps) {
			ops += len(txns[n].ops)
			n++
		}
		merged := &txn{cmps: []clientv3.Cmp{l.fence}}
		for _, t := range txns[:n] {
			merged.cmps = append(merged.cmps, t.cmps...)
			merged.ops = append(merged.ops, t.ops...)
			merged.events = append(merged.events, t.events...)
			merged.queued = append(merged.queued, t.queued...)
		}
		err := l.commitOne(ctx, merged)
		if store.IsStale(err) && n > 1 {
			for _, t := range txns[:n] {
				one := &txn{cmps: append([]clientv3.Cmp{l.fence}, t.cmps...), ops: t.ops, events: t.events, queued: t.queued}
				if err := l.commitOne(ctx, one); err != nil && !store.IsStale(err) {
					return err
				}
			}
		} else if err != nil && !store.IsStale(err) {
			return err
		}
		txns = txns[n:]
	}
	return nil
}

func (l *leader) commitOne(ctx context.Context, t *txn) error {
	rev, err := commit(ctx, l.cli, t)
	if err != nil {
		return err
	}
	l.wantRev = max(l.wantRev, rev)
	now := l.now()
	for _, q := range t.queued {
		l.met.placements.Inc()
		if !q.IsZero() {
			l.met.latency.Observe(now.Sub(q).Seconds())
		}
	}
	for _, e := range t.events {
		l.moved(e.typ)
	}
	l.pub.all(t.events)
	return nil
}

package evaluator

import (
	"context"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	evaluatorv1 "github.com/bmaas/bmaas/api/bmaas/evaluator/v1"
	"github.com/bmaas/bmaas/pkg/election"
	"github.com/bmaas/bmaas/pkg/store"
	"github.com/bmaas/bmaas/services/scheduler/schedkeys"
)

// lead drives every live experiment while this replica leads. Each pass
// is level-triggered: it reads the experiment, the searcher's state and
// the trials from etcd, so a new leader continues where the last stopped.
// A pass runs when a job or an experiment changes (watched), at once
// again after a pass that left trials to submit, and every Poll. With
// AutoEvaluate, the leader also sweeps for versions whose automatic
// evaluation an event missed (sweepLoop), at once and every AutoSweep.
func (e *Evaluator) lead(ctx context.Context, term int64) {
	fence, err := election.Fence(ctx, e.cli, electionService, term)
	if err != nil {
		e.log.Warn("leader key", "term", term, "err", err)
		return
	}
	e.log.Info("leading experiments", "term", term)
	if e.cfg.AutoEvaluate {
		swept := make(chan struct{})
		go func() {
			defer close(swept)
			e.sweepLoop(ctx)
		}()
		defer func() { <-swept }()
	}
	if e.watch != nil {
		watched := make(chan struct{})
		go func() {
			defer close(watched)
			e.watch(ctx, fence)
		}()
		defer func() { <-watched }()
	}
	t := time.NewTicker(e.cfg.Poll)
	defer t.Stop()
	wake := make(chan struct{}, 1)
	go e.watchChanges(ctx, wake)
	for {
		if e.driveAll(ctx, fence) {
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-wake:
		}
	}
}

// watchChanges wakes the leader's loop when a job or an experiment
// changes; wakes coalesce while a pass runs. The poll covers a broken watch.
func (e *Evaluator) watchChanges(ctx context.Context, wake chan<- struct{}) {
	for ctx.Err() == nil {
		jobs := e.cli.Watch(ctx, schedkeys.JobsPrefix, clientv3.WithPrefix(), clientv3.WithFilterDelete())
		xs := e.cli.Watch(ctx, experimentsPrefix(), clientv3.WithPrefix(), clientv3.WithFilterDelete())
		for open := 2; open > 0; {
			var resp clientv3.WatchResponse
			var ok bool
			select {
			case resp, ok = <-jobs:
				if !ok {
					jobs, open = nil, open-1
				}
			case resp, ok = <-xs:
				if !ok {
					xs, open = nil, open-1
				}
			}
			if ok && resp.Err() == nil {
				select {
				case wake <- struct{}{}:
				default:
				}
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(e.cfg.Poll):
		}
	}
}

// driveAll runs a pass over the live experiments and reports whether one
// left trials to submit (so another pass should follow at once).
func (e *Evaluator) driveAll(ctx context.Context, fence clientv3.Cmp) (again bool) {
	items, _, err := store.List(ctx, e.st, experimentsPrefix(), store.MaxPageSize, "",
		func() *evaluatorv1.Experiment { return &evaluatorv1.Experiment{} },
		func(x *evaluatorv1.Experiment) bool {
			return live(x.State) || x.State == evaluatorv1.ExperimentState_EXPERIMENT_STATE_CANCELLED
		})
	if err != nil {
		if ctx.Err() == nil {
			e.log.Warn("list experiments", "err", err)
		}
		return false
	}
	for _, it := range items {
		if ctx.Err() != nil {
			return false
		}
		pending, err := e.drive(ctx, fence, it.Msg, it.Rev)
		if err != nil && ctx.Err() == nil {
			e.log.Warn("drive experiment", "experiment", it.Msg.Id, "err", err)
		}
		again = again || pending
	}
	return again
}

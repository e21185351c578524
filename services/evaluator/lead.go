package evaluator

import (
	"context"
	"errors"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	evaluatorv1 "github.com/bmaas/bmaas/api/bmaas/evaluator/v1"
	"github.com/bmaas/bmaas/pkg/election"
	"github.com/bmaas/bmaas/pkg/store"
)

// lead drives every live experiment while this replica leads. Each pass
// is level-triggered: it reads the experiment, the searcher's state and
// the trials from etcd, so a new leader continues where the last stopped.
func (e *Evaluator) lead(ctx context.Context, term int64) {
	key, err := leaderKey(ctx, e.cli, term)
	if err != nil {
		e.log.Warn("leader key", "term", term, "err", err)
		return
	}
	fence := clientv3.Compare(clientv3.CreateRevision(key), "=", term)
	e.log.Info("leading experiments", "term", term)
	t := time.NewTicker(e.cfg.Poll)
	defer t.Stop()
	for {
		e.driveAll(ctx, fence)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// leaderKey finds the election key whose create revision is term.
func leaderKey(ctx context.Context, cli *clientv3.Client, term int64) (string, error) {
	resp, err := cli.Get(ctx, election.KeyPrefix+electionService+"/", clientv3.WithPrefix())
	if err != nil {
		return "", fmt.Errorf("read leader keys: %w", err)
	}
	for _, kv := range resp.Kvs {
		if kv.CreateRevision == term {
			return string(kv.Key), nil
		}
	}
	return "", errors.New("leader key of this term is gone")
}

func (e *Evaluator) driveAll(ctx context.Context, fence clientv3.Cmp) {
	items, _, err := store.List(ctx, e.st, experimentsPrefix(), store.MaxPageSize, "",
		func() *evaluatorv1.Experiment { return &evaluatorv1.Experiment{} },
		func(x *evaluatorv1.Experiment) bool {
			return live(x.State) || x.State == evaluatorv1.ExperimentState_EXPERIMENT_STATE_CANCELLED
		})
	if err != nil {
		if ctx.Err() == nil {
			e.log.Warn("list experiments", "err", err)
		}
		return
	}
	for _, it := range items {
		if ctx.Err() != nil {
			return
		}
		if err := e.drive(ctx, fence, it.Msg, it.Rev); err != nil && ctx.Err() == nil {
			e.log.Warn("drive experiment", "experiment", it.Msg.Id, "err", err)
		}
	}
}

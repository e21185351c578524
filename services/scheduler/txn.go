package scheduler

import (
	"context"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/protobuf/proto"

	schedulerv1 "github.com/bmaas/bmaas/api/bmaas/scheduler/v1"
	"github.com/bmaas/bmaas/pkg/store"
	"github.com/bmaas/bmaas/services/scheduler/schedkeys"
)

// txn is one etcd transaction: conditions, operations, and the job events
// to publish once it commits.
type txn struct {
	cmps   []clientv3.Cmp
	ops    []clientv3.Op
	events []jobEvent
	// queued holds, per job placed, when it entered the queue (metrics).
	queued []time.Time
}

type jobEvent struct {
	job *schedulerv1.Job
	typ string
}

func (t *txn) put(key string, m proto.Message) error {
	b, err := proto.Marshal(m)
	if err != nil {
		return fmt.Errorf("encode %s: %w", key, err)
	}
	t.ops = append(t.ops, clientv3.OpPut(key, string(b)))
	return nil
}

func (t *txn) del(key string) { t.ops = append(t.ops, clientv3.OpDelete(key)) }
func (t *txn) delPrefix(key string) {
	t.ops = append(t.ops, clientv3.OpDelete(key, clientv3.WithPrefix()))
}
func (t *txn) ifRev(key string, rev int64) {
	t.cmps = append(t.cmps, clientv3.Compare(clientv3.ModRevision(key), "=", rev))
}

// putJob writes j, checked against the revision read, and queues its event.
func (t *txn) putJob(j *schedulerv1.Job, rev int64, typ string) error {
	t.ifRev(schedkeys.Job(j.Id), rev)
	j.Etag = ""
	if typ != "" {
		t.events = append(t.events, jobEvent{job: j, typ: typ})
	}
	return t.put(schedkeys.Job(j.Id), j)
}

// commit runs t; it reports store.ErrStale when a condition failed.
func commit(ctx context.Context, cli *clientv3.Client, t *txn) (int64, error) {
	resp, err := cli.Txn(ctx).If(t.cmps...).Then(t.ops...).Commit()
	if err != nil {
		return 0, fmt.Errorf("etcd txn: %w", err)
	}
	if !resp.Succeeded {
		return 0, store.ErrStale
	}
	return resp.Header.Revision, nil
}

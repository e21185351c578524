package scheduler

import (
	"context"
	"fmt"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	schedulerv1 "github.com/bmaas/bmaas/api/bmaas/scheduler/v1"
	"github.com/bmaas/bmaas/pkg/events"
	"github.com/bmaas/bmaas/pkg/store"
	"github.com/bmaas/bmaas/services/scheduler/schedkeys"
)

// terminal reports whether a job state is final.
func terminal(s schedulerv1.JobState) bool {
	return s == schedulerv1.JobState_JOB_STATE_SUCCEEDED || s == schedulerv1.JobState_JOB_STATE_FAILED ||
		s == schedulerv1.JobState_JOB_STATE_CANCELLED
}

// stateName is the lower-case state for events and metrics: "queued".
func stateName(s schedulerv1.JobState) string {
	return strings.ToLower(strings.TrimPrefix(s.String(), "JOB_STATE_"))
}

// move changes j's state, recording the transition.
func move(j *schedulerv1.Job, s schedulerv1.JobState, reason string, now time.Time) {
	ts := timestamppb.New(now)
	j.State, j.Reason, j.UpdateTime = s, reason, ts
	j.History = append(j.History, &schedulerv1.JobTransition{State: s, Time: ts, Reason: reason})
}

// lastMove returns the time of the newest transition into s, or zero.
func lastMove(j *schedulerv1.Job, s schedulerv1.JobState) time.Time {
	for i := len(j.History) - 1; i >= 0; i-- {
		if j.History[i].State == s {
			return j.History[i].Time.AsTime()
		}
	}
	return time.Time{}
}

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

// publisher sends job events after their change committed; a lost event
// is logged, consumers reconcile from etcd.
type publisher struct {
	bus *events.Bus
	log interface {
		Warn(msg string, args ...any)
	}
}

func (p publisher) job(j *schedulerv1.Job, typ string) {
	if p.bus == nil {
		return
	}
	data, err := protojson.Marshal(j)
	if err != nil {
		p.log.Warn("encode event", "job", j.Id, "err", err)
		return
	}
	e := events.Event{Kind: events.KindJob, Key: j.Id, Type: typ, Time: j.GetUpdateTime().AsTime(), Data: data,
		Headers: map[string]string{"Content-Type": "application/json", "Bmaas-Type": "bmaas.scheduler.v1.Job"}}
	if err := p.bus.PublishAsync(e); err != nil {
		p.log.Warn("publish event", "job", j.Id, "type", typ, "err", err)
	}
}

func (p publisher) all(evs []jobEvent) {
	for _, e := range evs {
		p.job(e.job, e.typ)
	}
}

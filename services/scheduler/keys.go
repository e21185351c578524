package scheduler

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	schedulerv1 "github.com/bmaas/bmaas/api/bmaas/scheduler/v1"
	"github.com/bmaas/bmaas/pkg/events"
	"github.com/bmaas/bmaas/pkg/store"
)

// Keys of the contract (see doc.go).
var (
	jobsPrefix        = store.Key("jobs") + "/"
	nodesPrefix       = store.Key("nodes") + "/"
	assignmentsPrefix = store.Key("assignments") + "/"
	tasksPrefix       = store.Key("tasks") + "/"
)

func jobKey(id string) string    { return jobsPrefix + id }
func nodeKey(name string) string { return nodesPrefix + name }
func assignmentKey(node, job string, rank int32) string {
	return assignmentsPrefix + node + "/" + job + "/" + strconv.Itoa(int(rank))
}
func tasksOf(job string) string { return tasksPrefix + job + "/" }

// parseAssignmentKey splits /bmaas/v1/assignments/<node>/<job>/<rank>.
func parseAssignmentKey(key string) (node, job string, ok bool) {
	parts := strings.Split(strings.TrimPrefix(key, assignmentsPrefix), "/")
	if len(parts) != 3 {
		return "", "", false
	}
	return parts[0], parts[1], true
}

// parseTaskKey splits /bmaas/v1/tasks/<job>/<rank>.
func parseTaskKey(key string) (job string, rank int32, ok bool) {
	parts := strings.Split(strings.TrimPrefix(key, tasksPrefix), "/")
	if len(parts) != 2 {
		return "", 0, false
	}
	r, err := strconv.Atoi(parts[1])
	return parts[0], int32(r), err == nil
}

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
	t.ifRev(jobKey(j.Id), rev)
	j.Etag = ""
	if typ != "" {
		t.events = append(t.events, jobEvent{job: j, typ: typ})
	}
	return t.put(jobKey(j.Id), j)
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

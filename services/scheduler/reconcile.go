package scheduler

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"google.golang.org/protobuf/proto"

	schedulerv1 "github.com/bmaas/bmaas/api/bmaas/scheduler/v1"
	"github.com/bmaas/bmaas/services/scheduler/schedkeys"
)

const (
	stQueued    = schedulerv1.JobState_JOB_STATE_QUEUED
	stScheduled = schedulerv1.JobState_JOB_STATE_SCHEDULED
	stRunning   = schedulerv1.JobState_JOB_STATE_RUNNING
	stSucceeded = schedulerv1.JobState_JOB_STATE_SUCCEEDED
	stFailed    = schedulerv1.JobState_JOB_STATE_FAILED
)

// pass is one level-triggered reconcile: the lifecycle of every job that
// changed (every job when full), stray assignments, then placement.
func (l *leader) pass(ctx context.Context, full bool) error {
	start := time.Now()
	defer func() { l.met.reconcile.Observe(time.Since(start).Seconds()) }()
	now := l.now()
	ids := l.v.dirty
	if full {
		ids = map[string]bool{}
		for id := range l.v.jobs {
			ids[id] = true
		}
		for id := range l.v.assigns {
			ids[id] = true
		}
		for id := range l.v.tasks {
			ids[id] = true
		}
	}
	l.v.dirty = map[string]bool{}
	var txns []*txn
	touched := map[string]bool{}
	for _, id := range slices.Sorted(maps.Keys(ids)) {
		t, err := l.lifecycle(id, now)
		if err != nil {
			return err
		}
		if t != nil {
			txns = append(txns, t)
			touched[id] = true
		}
	}
	if err := l.flush(ctx, txns); err != nil {
		return err
	}
	if !full && !l.v.placeDirty {
		return nil
	}
	l.v.placeDirty = false
	txns, err := l.place(now, touched)
	if err != nil {
		return err
	}
	return l.flush(ctx, txns)
}

// lifecycle decides the next move of one job from its assignments and
// task statuses; it returns nil when nothing is to be done.
func (l *leader) lifecycle(id string, now time.Time) (*txn, error) {
	je, as, tasks := l.v.jobs[id], l.v.assigns[id], l.v.tasks[id]
	if je == nil { // the job is gone: so must its assignments be
		if len(as) == 0 && len(tasks) == 0 {
			return nil, nil
		}
		t := &txn{}
		l.clear(t, id)
		return t, nil
	}
	j := je.job
	switch {
	case terminal(j.State) || j.State == stQueued:
		if len(as) == 0 && len(tasks) == 0 {
			return nil, nil
		}
		t := &txn{}
		l.clear(t, id)
		return t, nil
	case j.State != stScheduled && j.State != stRunning:
		return nil, nil
	}
	if len(as) == 0 {
		return l.requeue(je, "its assignments vanished", false)
	}
	for _, a := range as {
		if l.v.nodes[a.nodeName] == nil {
			return l.requeue(je, fmt.Sprintf("node %s was lost", a.nodeName), false)
		}
	}
	world := j.GetSpec().GetWorkers()
	var running, succeeded int32
	var failed, lost *schedulerv1.TaskStatus
	var seen bool
	var restarts int32
	var note *schedulerv1.TaskStatus // a running task that says why (its server restarts)
	for _, ts := range tasks {
		if ts.Attempt != j.Attempt {
			continue // an older run's status
		}
		seen = true
		restarts += ts.Restarts
		switch ts.State {
		case schedulerv1.TaskState_TASK_STATE_RUNNING:
			running++
			if ts.Message != "" && (note == nil || ts.Rank < note.Rank) {
				note = ts
			}
		case schedulerv1.TaskState_TASK_STATE_SUCCEEDED:
			succeeded++
		case schedulerv1.TaskState_TASK_STATE_FAILED:
			if failed == nil || ts.Rank < failed.Rank {
				failed = ts
			}
		case schedulerv1.TaskState_TASK_STATE_CANCELLED:
			if lost == nil || ts.Rank < lost.Rank {
				lost = ts
			}
		}
	}
	rank0 := tasks[0]
	if rank0 != nil && rank0.Attempt != j.Attempt {
		rank0 = nil
	}
	switch {
	case failed != nil:
		msg := fmt.Sprintf("rank %d failed on %s: %s", failed.Rank, failed.Node, failed.Message)
		if j.Restarts < j.GetSpec().GetMaxRestarts() {
			return l.requeue(je, msg, true)
		}
		return l.end(je, stFailed, msg, "failed", now)
	case lost != nil: // its agent lost it, as with a node loss: not a restart
		return l.requeue(je, fmt.Sprintf("rank %d lost on %s: %s", lost.Rank, lost.Node, lost.Message), false)
	case succeeded == world:
		next := l.clone(je)
		if rank0 != nil {
			next.ModelVersion = rank0.ModelVersion
			progress(next, rank0)
		}
		return l.endJob(je, next, stSucceeded, fmt.Sprintf("all %d workers succeeded", world), "succeeded", now)
	case j.GetSpec().GetTimeoutSeconds() > 0 && j.State == stRunning &&
		now.Sub(lastMove(j, stRunning)) > time.Duration(j.Spec.TimeoutSeconds)*time.Second:
		return l.end(je, stFailed, fmt.Sprintf("timed out after %ds", j.Spec.TimeoutSeconds), "failed", now)
	case j.State == stScheduled && !seen && now.Sub(lastMove(j, stScheduled)) > l.cfg.StartTimeout:
		return l.requeue(je, fmt.Sprintf("no worker started within %s", l.cfg.StartTimeout), false)
	case j.State == stScheduled && running+succeeded == world:
		next := l.clone(je)
		progress(next, rank0)
		move(next, stRunning, fmt.Sprintf("all %d workers running", world), now)
		return l.write(je, next, "running")
	}
	reason := runningReason(j, note)
	if rank0 != nil && (rank0.Step != j.Step || rank0.CheckpointStep != j.CheckpointStep || !maps.Equal(rank0.Metrics, j.Metrics)) ||
		restarts != j.TaskRestarts || reason != j.Reason {
		next := l.clone(je)
		progress(next, rank0)
		next.TaskRestarts, next.Reason = restarts, reason
		return l.write(je, next, "")
	}
	return nil, nil
}

// runningReason is a running job's reason: the message of a running task
// that has one (its server restarts: "server exited with status 1;
// restart 3 in 4s"), else the reason of its last transition.
func runningReason(j *schedulerv1.Job, note *schedulerv1.TaskStatus) string {
	if j.State != stRunning {
		return j.Reason
	}
	if note != nil {
		return note.Message
	}
	if n := len(j.History); n > 0 {
		return j.History[n-1].Reason
	}
	return j.Reason
}

// progress copies the newest step, checkpoint and metrics of rank 0.
func progress(j *schedulerv1.Job, ts *schedulerv1.TaskStatus) {
	if ts == nil {
		return
	}
	j.Step, j.CheckpointStep = ts.Step, max(j.CheckpointStep, ts.CheckpointStep)
	if len(ts.Metrics) > 0 {
		j.Metrics = maps.Clone(ts.Metrics)
	}
}

func (l *leader) clone(je *jobEntry) *schedulerv1.Job { return proto.Clone(je.job).(*schedulerv1.Job) }

// write puts next over je, checked against je's revision.
func (l *leader) write(je *jobEntry, next *schedulerv1.Job, typ string) (*txn, error) {
	t := &txn{}
	if err := t.putJob(next, je.rev, typ); err != nil {
		return nil, err
	}
	return t, nil
}

// clear deletes a job's assignments and task statuses.
func (l *leader) clear(t *txn, id string) {
	for key := range l.v.assigns[id] {
		t.del(key)
	}
	t.delPrefix(schedkeys.TasksOf(id))
}

// end moves a job to a final state and takes its assignments away.
func (l *leader) end(je *jobEntry, s schedulerv1.JobState, reason, typ string, now time.Time) (*txn, error) {
	return l.endJob(je, l.clone(je), s, reason, typ, now)
}

func (l *leader) endJob(je *jobEntry, next *schedulerv1.Job, s schedulerv1.JobState, reason, typ string, now time.Time) (*txn, error) {
	move(next, s, reason, now)
	t, err := l.write(je, next, typ)
	if err == nil {
		l.clear(t, next.Id)
	}
	return t, err
}

// requeue sends a job back to the queue as a new attempt: a restart when
// counted (a worker failed), else a node loss or a lost start.
func (l *leader) requeue(je *jobEntry, why string, restart bool) (*txn, error) {
	next := l.clone(je)
	next.Attempt++
	next.Nodes = nil
	reason := "requeued: " + why
	if restart {
		next.Restarts++
		reason = fmt.Sprintf("restart %d of %d: %s", next.Restarts, next.GetSpec().GetMaxRestarts(), why)
	}
	move(next, stQueued, reason, l.now())
	t, err := l.write(je, next, "queued")
	if err == nil {
		l.clear(t, next.Id)
	}
	return t, err
}

// restamp rewrites every live assignment of an older term with this
// leader's term (agents ignore assignments of a deposed leader).
func (l *leader) restamp(ctx context.Context) error {
	var txns []*txn
	for _, as := range l.v.assigns {
		for _, a := range as {
			if a.a.Term == l.term {
				continue
			}
			na := proto.Clone(a.a).(*schedulerv1.Assignment)
			na.Term = l.term
			t := &txn{}
			t.ifRev(a.key, a.rev)
			if err := t.put(a.key, na); err != nil {
				return err
			}
			txns = append(txns, t)
		}
	}
	if len(txns) > 0 {
		l.log.Info("restamp assignments", "term", l.term, "n", len(txns))
	}
	return l.flush(ctx, txns)
}

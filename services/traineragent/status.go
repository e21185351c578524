package traineragent

import (
	"context"
	"errors"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/protobuf/proto"

	schedulerv1 "github.com/bmaas/bmaas/api/bmaas/scheduler/v1"
	"github.com/bmaas/bmaas/services/scheduler/schedkeys"
)

// errAssignmentGone: the assignment was deleted or replaced, so the
// status was not written.
var errAssignmentGone = errors.New("assignment no longer exists")

// update changes the worker's status; flush or the flush loop writes it.
func (w *worker) update(fn func(st *schedulerv1.TaskStatus)) {
	w.mu.Lock()
	fn(w.status)
	w.dirty = true
	w.mu.Unlock()
}

// snapshot returns a copy of the status.
func (w *worker) snapshot() *schedulerv1.TaskStatus {
	w.mu.Lock()
	defer w.mu.Unlock()
	return proto.Clone(w.status).(*schedulerv1.TaskStatus)
}

// flush writes the status if it changed, unless the worker was fenced.
func (w *worker) flush() {
	if w.fenced.Load() {
		return
	}
	// One write at a time, so that an older status never lands last.
	w.wmu.Lock()
	defer w.wmu.Unlock()
	w.mu.Lock()
	if !w.dirty {
		w.mu.Unlock()
		return
	}
	w.status.UpdateTime = w.now()
	st := proto.Clone(w.status).(*schedulerv1.TaskStatus)
	w.dirty = false
	w.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := w.write(ctx, st); err != nil {
		if !errors.Is(err, errAssignmentGone) {
			w.mu.Lock()
			w.dirty = true
			w.mu.Unlock()
		}
		w.log.Debug("write task status", "state", st.State, "err", err)
	}
}

// flushLoop writes progress at most every flush interval while the
// worker runs.
func (w *worker) flushLoop() {
	t := time.NewTicker(w.s.cfg.FlushInterval)
	defer t.Stop()
	for {
		select {
		case <-w.ctx.Done():
			return
		case <-t.C:
			w.flush()
		}
	}
}

// write puts the status if the assignment still exists as the worker saw
// it (same create revision), as the scheduling contract asks.
func (w *worker) write(ctx context.Context, st *schedulerv1.TaskStatus) error {
	b, err := proto.Marshal(st)
	if err != nil {
		return err
	}
	resp, err := w.s.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(w.key), "=", w.createRev)).
		Then(clientv3.OpPut(schedkeys.Task(st.JobId, st.Rank), string(b))).
		Commit()
	if err != nil {
		return err
	}
	if !resp.Succeeded {
		return errAssignmentGone
	}
	return nil
}

// progress records a step and metrics of the running task.
func (w *worker) progress(step int64, metrics map[string]float64) {
	w.update(func(st *schedulerv1.TaskStatus) {
		st.Step = max(st.Step, step)
		if st.Metrics == nil {
			st.Metrics = map[string]float64{}
		}
		for k, v := range metrics {
			st.Metrics[k] = v
		}
	})
}

// running marks the task RUNNING and writes it at once.
func (w *worker) running() {
	w.update(func(st *schedulerv1.TaskStatus) { st.State = schedulerv1.TaskState_TASK_STATE_RUNNING })
	w.flush()
}

// checkpointed records the newest uploaded checkpoint's step.
func (w *worker) checkpointed(step int64) {
	w.update(func(st *schedulerv1.TaskStatus) { st.CheckpointStep = max(st.CheckpointStep, step) })
}

// serving marks a process server's task RUNNING once it is ready, with
// the restarts it took, and writes it at once.
func (w *worker) serving(restarts int32) {
	w.update(func(st *schedulerv1.TaskStatus) {
		st.State, st.Restarts, st.Message = schedulerv1.TaskState_TASK_STATE_RUNNING, restarts, ""
	})
	w.flush()
}

// restarting records a process server's restart: how many so far, and
// the last exit and the next try; written at once.
func (w *worker) restarting(restarts int32, msg string) {
	w.update(func(st *schedulerv1.TaskStatus) { st.Restarts, st.Message = restarts, msg })
	w.flush()
}

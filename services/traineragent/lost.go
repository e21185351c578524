package traineragent

import (
	"time"

	schedulerv1 "github.com/bmaas/bmaas/api/bmaas/scheduler/v1"
	"github.com/bmaas/bmaas/services/scheduler/schedkeys"
)

// lostMessage is the status message of a task lost with its agent.
const lostMessage = "agent restarted: the task's process was lost"

// earlier is what an earlier run of a worker's attempt left in its status.
type earlier int

const (
	earlierNone  earlier = iota // nothing: run it
	earlierEnded                // it ended here: not run twice
	earlierLost                 // an earlier agent process started it, and its process went with that agent
)

// earlierRun reads the status of the worker's attempt on this node. fresh
// says that no earlier worker of this agent process ran the assignment, so
// a STARTING or RUNNING status was written by an agent process that is gone
// (killed, crashed): the task's process (a child of that agent, or the
// agent itself for the builtin runtime) is gone too.
func (w *worker) earlierRun(fresh bool) earlier {
	st := &schedulerv1.TaskStatus{}
	if _, err := w.s.deps.Store.Get(w.ctx, schedkeys.Task(w.a.JobId, w.a.Rank), st); err != nil {
		return earlierNone
	}
	if st.Attempt != w.a.Attempt || st.Node != w.s.cfg.Node {
		return earlierNone
	}
	found := earlierNone
	switch st.State {
	case schedulerv1.TaskState_TASK_STATE_SUCCEEDED, schedulerv1.TaskState_TASK_STATE_FAILED, schedulerv1.TaskState_TASK_STATE_CANCELLED:
		found = earlierEnded
	case schedulerv1.TaskState_TASK_STATE_STARTING, schedulerv1.TaskState_TASK_STATE_RUNNING:
		if fresh {
			found = earlierLost
		}
	}
	if found != earlierNone {
		w.mu.Lock()
		w.status = st
		w.mu.Unlock()
	}
	return found
}

// reportLost reports the lost attempt CANCELLED instead of running it
// again: a second run under the same attempt would share its directory and
// its log stream with the first, and the scheduler would not know. The
// scheduler requeues the job as a new attempt (not counted as a restart),
// resumed from its newest checkpoint, as after a node loss. The status is
// written until it lands or the assignment goes.
func (w *worker) reportLost() {
	w.log.Warn("task lost: the agent restarted while it ran; reporting it for a new attempt")
	w.update(func(st *schedulerv1.TaskStatus) {
		st.State, st.Message, st.EndTime, st.Term = schedulerv1.TaskState_TASK_STATE_CANCELLED, lostMessage, w.now(), w.a.Term
	})
	for {
		w.flush()
		w.mu.Lock()
		written := !w.dirty
		w.mu.Unlock()
		if written || !sleep(w.ctx, 200*time.Millisecond) {
			return
		}
	}
}

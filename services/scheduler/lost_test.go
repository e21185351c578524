//go:build integration

package scheduler

import (
	"testing"

	"github.com/stretchr/testify/require"

	schedulerv1 "github.com/bmaas/bmaas/api/bmaas/scheduler/v1"
)

// A task its agent reports CANCELLED (the agent restarted while it ran and
// its process was lost) requeues the job as a new attempt, like a node
// loss: not a restart, so a job without restarts left still runs again,
// and the history says why.
func TestLostTaskRequeuesAsANewAttempt(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false)
	e.node("n1", 8000, 16, 0)
	s := e.start("a", nil)
	id := submit(t, s, spec(func(s *schedulerv1.JobSpec) { s.MaxRestarts = 0 }))
	e.wait(s.c, id, inState(stScheduled))
	e.report(id, 0, taskRunning, func(st *schedulerv1.TaskStatus) { st.CheckpointStep = 4 })
	e.wait(s.c, id, inState(stRunning))
	e.report(id, 0, schedulerv1.TaskState_TASK_STATE_CANCELLED, func(st *schedulerv1.TaskStatus) {
		st.Message = "agent restarted: the task's process was lost"
	})
	j := e.wait(s.c, id, func(j *schedulerv1.Job) bool { return j.Attempt == 2 && j.State == stScheduled })
	require.Zero(t, j.Restarts, "a lost task is not a restart")
	require.Equal(t, "requeued: rank 0 lost on n1: agent restarted: the task's process was lost", j.History[len(j.History)-2].Reason)
	for _, a := range e.assignments(id) {
		require.Equal(t, int32(2), a.Attempt)
	}
}

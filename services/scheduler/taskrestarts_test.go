//go:build integration

package scheduler

import (
	"testing"

	"github.com/stretchr/testify/require"

	schedulerv1 "github.com/bmaas/bmaas/api/bmaas/scheduler/v1"
)

// The restarts the agents made inside the attempt add up into the job's
// task_restarts; a running task's message is the job's reason while it
// says one, and the running transition's reason comes back after.
func TestTaskRestartsAndMessageFoldIntoTheJob(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false)
	e.node("n1", 8000, 16, 0)
	s := e.start("a", nil)
	id := submit(t, s, spec(func(s *schedulerv1.JobSpec) { s.Workers = 2 }))
	e.wait(s.c, id, inState(stScheduled))
	e.report(id, 0, taskRunning, nil)
	e.report(id, 1, taskRunning, nil)
	running := e.wait(s.c, id, inState(stRunning)).Reason

	e.report(id, 1, taskRunning, func(st *schedulerv1.TaskStatus) {
		st.Restarts, st.Message = 2, "server exited with status 1; restart 2 in 2s"
	})
	e.report(id, 0, taskRunning, func(st *schedulerv1.TaskStatus) { st.Restarts = 1 })
	j := e.wait(s.c, id, func(j *schedulerv1.Job) bool { return j.TaskRestarts == 3 })
	require.Equal(t, "server exited with status 1; restart 2 in 2s", j.Reason)
	require.Equal(t, stRunning, j.State)

	e.report(id, 1, taskRunning, func(st *schedulerv1.TaskStatus) { st.Restarts = 2 })
	j = e.wait(s.c, id, func(j *schedulerv1.Job) bool { return j.Reason == running })
	require.EqualValues(t, 3, j.TaskRestarts)
}

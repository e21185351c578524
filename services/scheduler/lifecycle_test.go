//go:build integration

package scheduler

import (
	"testing"

	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"

	schedulerv1 "github.com/bmaas/bmaas/api/bmaas/scheduler/v1"
	"github.com/bmaas/bmaas/pkg/election"
	"github.com/bmaas/bmaas/pkg/events"
	"github.com/bmaas/bmaas/services/scheduler/schedkeys"
)

const (
	taskRunning   = schedulerv1.TaskState_TASK_STATE_RUNNING
	taskSucceeded = schedulerv1.TaskState_TASK_STATE_SUCCEEDED
	taskFailed    = schedulerv1.TaskState_TASK_STATE_FAILED
)

func submit(t *testing.T, s *sched, spec *schedulerv1.JobSpec) string {
	t.Helper()
	resp, err := s.c.SubmitJob(t.Context(), &schedulerv1.SubmitJobRequest{Spec: spec})
	require.NoError(t, err)
	return resp.Job.Id
}

func TestJobRunsToSuccess(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false)
	e.node("n1", 8000, 16, 4)
	s := e.start("a", nil)
	id := submit(t, s, spec(func(s *schedulerv1.JobSpec) { s.Workers = 2; s.Resources.Gpus = 2 }))
	j := e.wait(s.c, id, inState(stScheduled))
	require.Equal(t, []string{"n1"}, j.Nodes)

	_, term, err := election.Leader(t.Context(), e.cli, electionService)
	require.NoError(t, err)
	as := e.assignments(id)
	require.Len(t, as, 2)
	a0, a1 := as[schedkeys.Assignment("n1", id, 0)], as[schedkeys.Assignment("n1", id, 1)]
	require.Equal(t, term, a0.Term)
	require.Equal(t, int32(1), a0.Attempt)
	require.Equal(t, int32(2), a0.WorldSize)
	require.Equal(t, "n1.local", a0.MasterAddr)
	require.Equal(t, int32(29500), a0.MasterPort)
	require.Equal(t, a0.MasterPort, a1.MasterPort)
	require.Equal(t, []int32{0, 1}, a0.GpuIndices)
	require.Equal(t, []int32{2, 3}, a1.GpuIndices)
	require.Equal(t, int32(1), a1.LocalRank)
	require.Equal(t, int32(0), a1.NodeRank)

	n, err := s.c.GetNode(t.Context(), &schedulerv1.GetNodeRequest{Name: "n1"})
	require.NoError(t, err)
	require.Equal(t, int32(4), n.Node.AllocatedGpus)
	require.Equal(t, int64(2000), n.Node.AllocatedCpuMillis)

	e.report(id, 0, taskRunning, nil)
	require.Equal(t, stScheduled, e.wait(s.c, id, func(j *schedulerv1.Job) bool { return true }).State)
	e.report(id, 1, taskRunning, nil)
	e.wait(s.c, id, inState(stRunning))
	e.report(id, 0, taskRunning, func(st *schedulerv1.TaskStatus) {
		st.Step, st.CheckpointStep, st.Metrics = 3, 2, map[string]float64{"loss": 0.5}
	})
	e.wait(s.c, id, func(j *schedulerv1.Job) bool { return j.Step == 3 && j.Metrics["loss"] == 0.5 })
	e.report(id, 1, taskSucceeded, nil)
	e.report(id, 0, taskSucceeded, func(st *schedulerv1.TaskStatus) { st.ModelVersion = 7 })
	j = e.wait(s.c, id, inState(stSucceeded))
	require.Equal(t, int64(7), j.ModelVersion)
	var states []schedulerv1.JobState
	for _, h := range j.History {
		states = append(states, h.State)
		require.NotNil(t, h.Time)
		require.NotEmpty(t, h.Reason)
	}
	require.Equal(t, []schedulerv1.JobState{stQueued, stScheduled, stRunning, stSucceeded}, states)
	poll(t, func() bool { return len(e.assignments(id)) == 0 }, func() string { return "assignments stay" })

	var subjects []string
	require.NoError(t, e.bus.Replay(t.Context(), events.StreamEvents, "bmaas.job."+id+".>", false, func(ev events.Event) error {
		subjects = append(subjects, ev.Type)
		return nil
	}))
	require.Equal(t, []string{"queued", "scheduled", "running", "succeeded"}, subjects)
}

func TestRestartThenFail(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false)
	e.node("n1", 8000, 16, 0)
	s := e.start("a", nil)
	id := submit(t, s, spec(func(s *schedulerv1.JobSpec) { s.MaxRestarts = 1 }))
	e.wait(s.c, id, inState(stScheduled))
	e.report(id, 0, taskFailed, func(st *schedulerv1.TaskStatus) { st.Message = "exit status 1: boom" })
	j := e.wait(s.c, id, func(j *schedulerv1.Job) bool { return j.Attempt == 2 && j.State == stScheduled })
	require.Equal(t, int32(1), j.Restarts)
	for _, a := range e.assignments(id) {
		require.Equal(t, int32(2), a.Attempt)
	}
	e.report(id, 0, taskFailed, func(st *schedulerv1.TaskStatus) { st.Message = "exit status 2: boom again" })
	j = e.wait(s.c, id, inState(stFailed))
	require.Contains(t, j.Reason, "boom again")
	require.Equal(t, int32(1), j.Restarts)
}

func TestCancelTakesAssignmentsAway(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false)
	e.node("n1", 8000, 16, 0)
	s := e.start("a", nil)
	id := submit(t, s, spec(nil))
	e.wait(s.c, id, inState(stScheduled))
	e.report(id, 0, taskRunning, nil)
	e.wait(s.c, id, inState(stRunning))
	_, err := s.c.CancelJob(t.Context(), &schedulerv1.CancelJobRequest{Id: id})
	require.NoError(t, err)
	poll(t, func() bool { return len(e.assignments(id)) == 0 }, func() string { return "assignments stay" })
	resp, err := e.cli.Get(t.Context(), schedkeys.TasksOf(id), clientv3.WithPrefix(), clientv3.WithCountOnly())
	require.NoError(t, err)
	require.Zero(t, resp.Count)
}

func TestNodeLossRequeues(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false)
	lose := e.node("n1", 8000, 16, 0)
	s := e.start("a", nil)
	id := submit(t, s, spec(nil))
	e.wait(s.c, id, inState(stScheduled))
	e.report(id, 0, taskRunning, nil)
	e.wait(s.c, id, inState(stRunning))
	e.node("n2", 2000, 4, 0)
	lose()
	j := e.wait(s.c, id, func(j *schedulerv1.Job) bool { return j.Attempt == 2 && j.State == stScheduled })
	require.Equal(t, []string{"n2"}, j.Nodes)
	require.Zero(t, j.Restarts, "a node loss is not a restart")
	require.Contains(t, j.History[len(j.History)-2].Reason, "node n1 was lost")
	require.Len(t, e.assignments(id), 1)
}

func TestPreemption(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false)
	e.node("n1", 4000, 16, 2)
	s := e.start("a", nil)
	low := submit(t, s, spec(func(s *schedulerv1.JobSpec) { s.Resources.Gpus = 2; s.Preemptible = true }))
	e.wait(s.c, low, inState(stScheduled))
	e.report(low, 0, taskRunning, func(st *schedulerv1.TaskStatus) { st.CheckpointStep = 4 })
	e.wait(s.c, low, inState(stRunning))
	peer := submit(t, s, spec(func(s *schedulerv1.JobSpec) { s.Resources.Gpus = 1 }))
	j := e.wait(s.c, peer, func(j *schedulerv1.Job) bool { return j.Reason != "submitted" })
	require.Contains(t, j.Reason, "Waiting for capacity")
	high := submit(t, s, spec(func(s *schedulerv1.JobSpec) { s.Resources.Gpus = 2; s.Priority = 10 }))
	e.wait(s.c, high, inState(stScheduled))
	j = e.wait(s.c, low, inState(stQueued))
	require.Equal(t, int32(1), j.Preemptions)
	require.Equal(t, int32(2), j.Attempt)
	require.Equal(t, int64(4), j.CheckpointStep, "resumes from its checkpoint")
	require.Contains(t, j.History[len(j.History)-1].Reason, "preempted by job "+high)
	require.Empty(t, e.assignments(low))
	require.Equal(t, stQueued, e.wait(s.c, peer, inState(stQueued)).State, "same priority never preempts")
}

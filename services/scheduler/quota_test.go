//go:build integration

package scheduler

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	iamv1 "github.com/bmaas/bmaas/api/bmaas/iam/v1"
	schedulerv1 "github.com/bmaas/bmaas/api/bmaas/scheduler/v1"
	"github.com/bmaas/bmaas/pkg/iam"
	"github.com/bmaas/bmaas/services/scheduler/schedkeys"
)

// project writes a project with a GPU quota (0: none), as the IAM API
// does.
func (e *env) project(name string, gpus int64) {
	p := &iamv1.Project{Name: name}
	if gpus > 0 {
		p.Quota = &iamv1.Quota{Gpus: gpus}
	}
	b, err := proto.Marshal(p)
	require.NoError(e.t, err)
	_, err = e.cli.Put(e.t.Context(), iam.ProjectKey(name), string(b))
	require.NoError(e.t, err)
}

func gpuJob(project string) *schedulerv1.JobSpec {
	return spec(func(s *schedulerv1.JobSpec) { s.Resources.Gpus, s.Project = 1, project })
}

// TestQuotaReclaimAndReasons: a project borrows the idle GPUs beyond its
// quota; when the owner of that quota submits, the leader takes them back
// in one pass (the borrowed jobs go back to the queue saying why) and the
// borrower's jobs wait with the quota reason. Jobs name their project;
// an unknown project is refused naming spec.project.
func TestQuotaReclaimAndReasons(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false)
	e.project("nlp", 4)
	e.project("vision", 4)
	e.node("n1", 64000, 256, 8)
	s := e.start("a", nil)

	_, err := s.c.SubmitJob(t.Context(), &schedulerv1.SubmitJobRequest{Spec: gpuJob("nope")})
	require.Equal(t, codes.InvalidArgument, status.Code(err), "%v", err)
	require.Contains(t, status.Convert(err).Message(), "spec.project")

	var nlp []string
	for range 8 {
		nlp = append(nlp, submit(t, s, gpuJob("nlp")))
	}
	for _, id := range nlp {
		e.wait(s.c, id, inState(stScheduled))
	}
	var vision []string
	for range 4 {
		vision = append(vision, submit(t, s, gpuJob("vision")))
	}
	for _, id := range vision {
		e.wait(s.c, id, inState(stScheduled))
	}
	reclaimed, scheduled := 0, 0
	for _, id := range nlp {
		j := e.wait(s.c, id, func(j *schedulerv1.Job) bool { return j.State == stScheduled || j.State == stQueued })
		switch j.State {
		case stScheduled:
			scheduled++
		case stQueued:
			reclaimed++
			require.Equal(t, int32(1), j.Preemptions)
			require.Contains(t, historyReasons(j), "reclaimed by project vision (within its quota)")
			j = e.wait(s.c, id, func(j *schedulerv1.Job) bool { return strings.HasPrefix(j.Reason, "over quota") })
			require.Equal(t, "over quota: project nlp uses 4 of 4 GPUs (waiting for idle capacity to borrow)", j.Reason)
		}
	}
	require.Equal(t, 4, reclaimed, "what nlp borrowed went back")
	require.Equal(t, 4, scheduled, "nlp keeps its quota")

	list, err := s.c.ListJobs(t.Context(), &schedulerv1.ListJobsRequest{Project: "vision"})
	require.NoError(t, err)
	require.Len(t, list.GetJobs(), 4)
	for _, j := range list.GetJobs() {
		require.Equal(t, "vision", j.GetSpec().GetProject())
	}
}

func historyReasons(j *schedulerv1.Job) string {
	var b strings.Builder
	for _, h := range j.GetHistory() {
		b.WriteString(h.GetReason())
		b.WriteByte('\n')
	}
	return b.String()
}

// TestJobsFromBeforeProjectsAreDefaults: a job stored before jobs had a
// project belongs to the default project: shown so, listed under it, and
// counted in its share.
func TestJobsFromBeforeProjectsAreDefaults(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false)
	s := e.start("a", nil)
	old := &schedulerv1.Job{Id: "01OLDJOB", Spec: spec(nil), State: stSucceeded}
	b, err := proto.Marshal(old)
	require.NoError(t, err)
	_, err = e.cli.Put(t.Context(), schedkeys.Job("01OLDJOB"), string(b))
	require.NoError(t, err)
	got, err := s.c.GetJob(t.Context(), &schedulerv1.GetJobRequest{Id: "01OLDJOB"})
	require.NoError(t, err)
	require.Equal(t, iam.DefaultProject, got.GetJob().GetSpec().GetProject())
	list, err := s.c.ListJobs(t.Context(), &schedulerv1.ListJobsRequest{Project: iam.DefaultProject})
	require.NoError(t, err)
	require.Len(t, list.GetJobs(), 1)
	require.Equal(t, iam.DefaultProject, list.GetJobs()[0].GetSpec().GetProject())
	list, err = s.c.ListJobs(t.Context(), &schedulerv1.ListJobsRequest{Project: "vision"})
	require.NoError(t, err)
	require.Empty(t, list.GetJobs())
}

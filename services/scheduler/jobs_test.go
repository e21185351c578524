//go:build integration

package scheduler

import (
	"io"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	schedulerv1 "github.com/bmaas/bmaas/api/bmaas/scheduler/v1"
	"github.com/bmaas/bmaas/pkg/events"
)

func TestSubmitValidation(t *testing.T) {
	t.Parallel()
	e := newEnv(t, true)
	s := e.start("a", nil)
	builtin := func(f func(*schedulerv1.BuiltinRuntime)) func(*schedulerv1.JobSpec) {
		return func(s *schedulerv1.JobSpec) { f(s.GetBuiltin()) }
	}
	tests := []struct {
		name   string
		spec   *schedulerv1.JobSpec
		code   codes.Code
		inText string
	}{
		{"no spec", nil, codes.InvalidArgument, "spec: required"},
		{"bad model name", spec(func(s *schedulerv1.JobSpec) { s.Model = "Bad Name" }), codes.InvalidArgument, "spec.model"},
		{"unknown model", spec(func(s *schedulerv1.JobSpec) { s.Model = "nope" }), codes.InvalidArgument, `spec.model: model "nope" not found`},
		{"unknown dataset", spec(builtin(func(b *schedulerv1.BuiltinRuntime) { b.Dataset = "nope" })), codes.InvalidArgument, "spec.builtin.dataset: dataset \"nope\""},
		{"unknown dataset version", spec(builtin(func(b *schedulerv1.BuiltinRuntime) { b.DatasetVersion = 7 })), codes.InvalidArgument, "version 7 not found"},
		{"unknown algorithm", spec(builtin(func(b *schedulerv1.BuiltinRuntime) { b.Algorithm = "magic" })), codes.InvalidArgument, "spec.builtin.algorithm"},
		{"unknown hyperparameter", spec(builtin(func(b *schedulerv1.BuiltinRuntime) { b.Hyperparameters = map[string]string{"zz": "1"} })), codes.InvalidArgument, `spec.builtin.hyperparameters: invalid parameter: param "zz"`},
		{"hyperparameter of the wrong type", spec(builtin(func(b *schedulerv1.BuiltinRuntime) { b.Hyperparameters = map[string]string{"C": "abc"} })), codes.InvalidArgument, `param "C"`},
		{"bad target column", spec(builtin(func(b *schedulerv1.BuiltinRuntime) { b.TargetColumn = "label" })), codes.InvalidArgument, "spec.builtin.target_column"},
		{"fractions", spec(builtin(func(b *schedulerv1.BuiltinRuntime) { b.TestFraction, b.ValidationFraction = 0.6, 0.5 })), codes.InvalidArgument, "spec.builtin.validation_fraction"},
		{"no runtime", spec(func(s *schedulerv1.JobSpec) { s.Runtime = nil }), codes.InvalidArgument, "spec.runtime"},
		{"process without command", spec(func(s *schedulerv1.JobSpec) {
			s.Runtime = &schedulerv1.JobSpec_Process{Process: &schedulerv1.ProcessRuntime{}}
		}), codes.InvalidArgument, "spec.process.command"},
		{"negative cpu", spec(func(s *schedulerv1.JobSpec) { s.Resources.CpuMillis = -1 }), codes.InvalidArgument, "spec.resources.cpu_millis"},
		{"absurd gpus", spec(func(s *schedulerv1.JobSpec) { s.Resources.Gpus = 1000 }), codes.InvalidArgument, "spec.resources.gpus"},
		{"gpu model without gpus", spec(func(s *schedulerv1.JobSpec) { s.Resources.GpuModel = "T4" }), codes.InvalidArgument, "spec.resources.gpu_model"},
		{"negative gpu memory", spec(func(s *schedulerv1.JobSpec) { s.Resources.GpuMemoryBytes = -1 }), codes.InvalidArgument, "spec.resources.gpu_memory_bytes: must not be negative"},
		{"gpu memory with whole gpus", spec(func(s *schedulerv1.JobSpec) { s.Resources.Gpus, s.Resources.GpuMemoryBytes = 1, 1<<30 }), codes.InvalidArgument, "spec.resources.gpu_memory_bytes: a share of one GPU"},
		{"negative workers", spec(func(s *schedulerv1.JobSpec) { s.Workers = -2 }), codes.InvalidArgument, "spec.workers"},
		{"no network for a gang", spec(func(s *schedulerv1.JobSpec) {
			s.Workers = 2
			s.Runtime = &schedulerv1.JobSpec_Process{Process: &schedulerv1.ProcessRuntime{Command: "python3", NoNetwork: true}}
		}), codes.InvalidArgument, "spec.process.no_network: a job of 2 workers needs the network"},
		{"priority", spec(func(s *schedulerv1.JobSpec) { s.Priority = 1 << 20 }), codes.InvalidArgument, "spec.priority"},
		{"negative termination grace", spec(func(s *schedulerv1.JobSpec) { s.TerminationGraceSeconds = -1 }), codes.InvalidArgument, "spec.termination_grace_seconds"},
		{"termination grace over an hour", spec(func(s *schedulerv1.JobSpec) { s.TerminationGraceSeconds = 3601 }), codes.InvalidArgument, "spec.termination_grace_seconds"},
		{"bad selector", spec(func(s *schedulerv1.JobSpec) { s.NodeSelector = map[string]string{"a b": "x"} }), codes.InvalidArgument, "spec.node_selector"},
	}
	for _, tt := range tests {
		_, err := s.c.SubmitJob(t.Context(), &schedulerv1.SubmitJobRequest{Spec: tt.spec})
		require.Error(t, err, tt.name)
		require.Equal(t, tt.code, status.Code(err), "%s: %v", tt.name, err)
		require.Contains(t, status.Convert(err).Message(), tt.inText, tt.name)
	}

	// A valid job: defaults filled, the dataset version pinned, QUEUED.
	resp, err := s.c.SubmitJob(t.Context(), &schedulerv1.SubmitJobRequest{Spec: spec(func(s *schedulerv1.JobSpec) {
		s.Resources = nil
		s.Labels = map[string]string{"team": "a"}
	})})
	require.NoError(t, err)
	j := resp.Job
	require.Len(t, j.Id, 26)
	require.Equal(t, schedulerv1.JobState_JOB_STATE_QUEUED, j.State)
	require.Equal(t, int32(1), j.Spec.Workers)
	require.Equal(t, int32(1), j.Attempt)
	require.Equal(t, int64(1000), j.Spec.Resources.CpuMillis)
	require.Equal(t, int64(1), j.Spec.GetBuiltin().DatasetVersion)
	require.Len(t, j.History, 1)
	require.NotEmpty(t, j.Etag)

	// The move is an event.
	var subjects []string
	require.NoError(t, e.bus.Replay(t.Context(), events.StreamEvents, "bmaas.job."+j.Id+".>", false, func(ev events.Event) error {
		subjects = append(subjects, ev.Subject())
		return nil
	}))
	require.Equal(t, []string{"bmaas.job." + j.Id + ".queued"}, subjects)
}

func TestListGetCancel(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false)
	s := e.start("a", nil)
	ctx := t.Context()
	var ids []string
	for i := range 5 {
		resp, err := s.c.SubmitJob(ctx, &schedulerv1.SubmitJobRequest{Spec: spec(func(s *schedulerv1.JobSpec) {
			s.Labels = map[string]string{"n": string(rune('a' + i))}
			if i%2 == 0 {
				s.Model = "even"
			}
			s.Resources.Gpus = 64 // never placed: no node
		})})
		require.NoError(t, err)
		ids = append(ids, resp.Job.Id)
	}
	// Paging keeps submission order.
	var got []string
	token := ""
	for {
		resp, err := s.c.ListJobs(ctx, &schedulerv1.ListJobsRequest{PageSize: 2, PageToken: token})
		require.NoError(t, err)
		for _, j := range resp.Jobs {
			got = append(got, j.Id)
		}
		if token = resp.NextPageToken; token == "" {
			break
		}
	}
	require.Equal(t, ids, got)
	list := func(req *schedulerv1.ListJobsRequest) int {
		resp, err := s.c.ListJobs(ctx, req)
		require.NoError(t, err)
		return len(resp.Jobs)
	}
	require.Equal(t, 3, list(&schedulerv1.ListJobsRequest{Model: "even"}))
	require.Equal(t, 1, list(&schedulerv1.ListJobsRequest{LabelSelector: "n=b"}))
	require.Equal(t, 4, list(&schedulerv1.ListJobsRequest{LabelSelector: "n!=b"}))
	_, err := s.c.ListJobs(ctx, &schedulerv1.ListJobsRequest{LabelSelector: "=x"})
	require.Equal(t, codes.InvalidArgument, status.Code(err))

	// Unschedulable says why, without a hang.
	j := e.wait(s.c, ids[0], func(j *schedulerv1.Job) bool { return j.Reason != "submitted" })
	require.Equal(t, "Unschedulable: no node matches GPUs", j.Reason)

	// Watch streams until the job ends; cancel ends it.
	w, err := s.c.WatchJob(ctx, &schedulerv1.WatchJobRequest{Id: ids[1]})
	require.NoError(t, err)
	first, err := w.Recv()
	require.NoError(t, err)
	require.Equal(t, schedulerv1.JobState_JOB_STATE_QUEUED, first.Job.State)
	resp, err := s.c.CancelJob(ctx, &schedulerv1.CancelJobRequest{Id: ids[1], Reason: "no longer needed"})
	require.NoError(t, err)
	require.Equal(t, schedulerv1.JobState_JOB_STATE_CANCELLED, resp.Job.State)
	var last *schedulerv1.Job
	for {
		msg, err := w.Recv()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		last = msg.Job
	}
	require.Equal(t, schedulerv1.JobState_JOB_STATE_CANCELLED, last.State)
	require.Equal(t, "no longer needed", last.Reason)
	again, err := s.c.CancelJob(ctx, &schedulerv1.CancelJobRequest{Id: ids[1]})
	require.NoError(t, err, "cancelling twice is a no-op")
	require.Len(t, again.Job.History, len(resp.Job.History))
	require.Equal(t, 1, list(&schedulerv1.ListJobsRequest{State: schedulerv1.JobState_JOB_STATE_CANCELLED}))

	_, err = s.c.GetJob(ctx, &schedulerv1.GetJobRequest{Id: "01J00000000000000000000000"})
	require.Equal(t, codes.NotFound, status.Code(err))
	_, err = s.c.CancelJob(ctx, &schedulerv1.CancelJobRequest{Id: "01J00000000000000000000000"})
	require.Equal(t, codes.NotFound, status.Code(err))
}

package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
	schedulerv1 "github.com/bmaas/bmaas/api/bmaas/scheduler/v1"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
)

// fakeScheduler is an in-memory scheduler: submitted jobs are kept, and
// WatchJob plays the next scripted sequence of updates.
type fakeScheduler struct {
	schedulerv1.UnimplementedSchedulerServiceServer
	mu        sync.Mutex
	jobs      []*schedulerv1.Job
	watches   [][]*schedulerv1.Job // one script per WatchJob call
	watchErrs []error              // returned after the script of the same call
	nodes     []*schedulerv1.Node
	logs      []string
	lastList  *schedulerv1.ListJobsRequest
	lastLogs  *schedulerv1.GetJobLogsRequest
}

// startPlatform serves the fake registry and scheduler on one in-memory
// listener, like `bmaas up` serves every service on one port.
func startPlatform(t *testing.T) (*globals, *fakePlatformRegistry, *fakeScheduler) {
	lis := bufconn.Listen(1 << 20)
	srv := grpc.NewServer()
	reg := &fakePlatformRegistry{fakeRegistry: newFakeRegistry(), dsets: map[string]*registryv1.Dataset{},
		bundles: map[string][]byte{}}
	sch := &fakeScheduler{}
	registryv1.RegisterRegistryServiceServer(srv, reg)
	schedulerv1.RegisterSchedulerServiceServer(srv, sch)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return &globals{dial: func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }}, reg, sch
}

func (f *fakeScheduler) SubmitJob(_ context.Context, r *schedulerv1.SubmitJobRequest) (*schedulerv1.SubmitJobResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	j := &schedulerv1.Job{Id: fmt.Sprintf("job-%d", len(f.jobs)+1), Spec: r.GetSpec(), State: schedulerv1.JobState_JOB_STATE_QUEUED}
	f.jobs = append(f.jobs, j)
	return &schedulerv1.SubmitJobResponse{Job: j}, nil
}

func (f *fakeScheduler) job(id string) (*schedulerv1.Job, error) {
	for _, j := range f.jobs {
		if j.GetId() == id {
			return j, nil
		}
	}
	return nil, status.Errorf(codes.NotFound, "job %q not found", id)
}

func (f *fakeScheduler) GetJob(_ context.Context, r *schedulerv1.GetJobRequest) (*schedulerv1.GetJobResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	j, err := f.job(r.GetId())
	return &schedulerv1.GetJobResponse{Job: j}, err
}

// ListJobs returns one job per page to exercise paging.
func (f *fakeScheduler) ListJobs(_ context.Context, r *schedulerv1.ListJobsRequest) (*schedulerv1.ListJobsResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lastList = r
	i, _ := strconv.Atoi(r.GetPageToken())
	resp := &schedulerv1.ListJobsResponse{}
	if i < len(f.jobs) {
		resp.Jobs = f.jobs[i : i+1]
	}
	if i+1 < len(f.jobs) {
		resp.NextPageToken = strconv.Itoa(i + 1)
	}
	return resp, nil
}

func (f *fakeScheduler) CancelJob(_ context.Context, r *schedulerv1.CancelJobRequest) (*schedulerv1.CancelJobResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	j, err := f.job(r.GetId())
	if err == nil {
		j.State, j.Reason = schedulerv1.JobState_JOB_STATE_CANCELLED, r.GetReason()
	}
	return &schedulerv1.CancelJobResponse{Job: j}, err
}

func (f *fakeScheduler) WatchJob(r *schedulerv1.WatchJobRequest, s grpc.ServerStreamingServer[schedulerv1.WatchJobResponse]) error {
	f.mu.Lock()
	if len(f.watches) == 0 {
		f.mu.Unlock()
		return status.Error(codes.Unimplemented, "no script")
	}
	script, err := f.watches[0], f.watchErrs[0]
	f.watches, f.watchErrs = f.watches[1:], f.watchErrs[1:]
	f.mu.Unlock()
	for _, j := range script {
		j.Id = r.GetId()
		if err := s.Send(&schedulerv1.WatchJobResponse{Job: j}); err != nil {
			return err
		}
		f.mu.Lock()
		if cur, ferr := f.job(r.GetId()); ferr == nil {
			cur.State, cur.Reason = j.GetState(), j.GetReason() // GetJob sees what was sent
		}
		f.mu.Unlock()
	}
	return err
}

func (f *fakeScheduler) script(err error, jobs ...*schedulerv1.Job) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.watches = append(f.watches, jobs)
	f.watchErrs = append(f.watchErrs, err)
}

func (f *fakeScheduler) GetJobLogs(r *schedulerv1.GetJobLogsRequest, s grpc.ServerStreamingServer[schedulerv1.GetJobLogsResponse]) error {
	f.mu.Lock()
	f.lastLogs = r
	lines := f.logs
	f.mu.Unlock()
	if n := int(r.GetTailLines()); n > 0 && n < len(lines) {
		lines = lines[len(lines)-n:]
	}
	for _, l := range lines {
		if err := s.Send(&schedulerv1.GetJobLogsResponse{Lines: []string{l}}); err != nil {
			return err
		}
	}
	return nil
}

func (f *fakeScheduler) ListNodes(_ context.Context, _ *schedulerv1.ListNodesRequest) (*schedulerv1.ListNodesResponse, error) {
	return &schedulerv1.ListNodesResponse{Nodes: f.nodes}, nil
}

func TestParseJobState(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]schedulerv1.JobState{"": 0, "running": 3, "SUCCEEDED": 4, "job_state_failed": 5} {
		got, err := parseJobState(in)
		require.NoError(t, err, in)
		require.Equal(t, want, got, in)
	}
	for _, bad := range []string{"done", "unspecified", "JOB_STATE_UNSPECIFIED"} {
		_, err := parseJobState(bad)
		require.ErrorContains(t, err, "--state must be", bad)
	}
}

func TestJobListGetCancelLogs(t *testing.T) {
	t.Parallel()
	g, _, sch := startPlatform(t)
	for _, m := range []string{"bc", "iris"} {
		_, _ = sch.SubmitJob(t.Context(), &schedulerv1.SubmitJobRequest{Spec: &schedulerv1.JobSpec{Model: m,
			Runtime: &schedulerv1.JobSpec_Builtin{Builtin: &schedulerv1.BuiltinRuntime{Algorithm: "logistic", Dataset: m}}}})
	}
	sch.jobs[1].Reason = "Unschedulable: needs 8 GPUs,\nlargest node has 4"
	out, _, err := run(t, g, "job", "list", "--state", "queued", "--model", "bc", "--label", "team=ml")
	require.NoError(t, err)
	require.Contains(t, out, "ID      PROJECT   MODEL   RUNTIME            STATE    STEP   RESTARTS   NODES   VERSION   CREATED   REASON\n")
	require.Contains(t, out, "job-1   -         bc      builtin:logistic   QUEUED   0      0          -       -         -         -\n")
	require.Contains(t, out, "Unschedulable: needs 8 GPUs, largest node has 4\n", "both pages, reason on one line")
	require.Equal(t, schedulerv1.JobState_JOB_STATE_QUEUED, sch.lastList.GetState())
	require.Equal(t, "bc", sch.lastList.GetModel())
	require.Equal(t, "team=ml", sch.lastList.GetLabelSelector())

	out, _, err = run(t, g, "job", "get", "job-1")
	require.NoError(t, err)
	require.Contains(t, out, "Runtime:         builtin logistic on bc@0, target -, params -\n")
	_, _, err = run(t, g, "job", "get", "nope")
	require.EqualError(t, err, `NotFound: job "nope" not found`)

	out, _, err = run(t, g, "job", "cancel", "job-2", "--reason", "wrong data")
	require.NoError(t, err)
	require.Equal(t, "job job-2: CANCELLED\n", out)

	sch.logs = []string{"epoch 1", "epoch 2\n", "epoch 3"}
	out, _, err = run(t, g, "job", "logs", "job-1", "-f", "--tail", "2")
	require.NoError(t, err)
	require.Equal(t, "epoch 2\nepoch 3\n", out)
	require.True(t, sch.lastLogs.GetFollow())
}

func TestJobWatchResumesAndExitsOnState(t *testing.T) {
	t.Parallel()
	g, _, sch := startPlatform(t)
	_, _ = sch.SubmitJob(t.Context(), &schedulerv1.SubmitJobRequest{Spec: &schedulerv1.JobSpec{Model: "bc"}})
	running := &schedulerv1.Job{State: schedulerv1.JobState_JOB_STATE_RUNNING, Step: 3, Metrics: map[string]float64{"train_loss": 0.5}}
	sch.script(status.Error(codes.Unavailable, "leader moved"), running)
	sch.script(nil, &schedulerv1.Job{State: schedulerv1.JobState_JOB_STATE_FAILED, Reason: "exit status 1: boom"})
	out, stderr, err := run(t, g, "job", "watch", "job-1")
	require.EqualError(t, err, "job job-1 FAILED: exit status 1: boom")
	require.Equal(t, "job job-1: QUEUED\njob job-1: RUNNING\njob job-1: FAILED: exit status 1: boom\n", stderr,
		"state changes as lines, no progress line off a terminal")
	require.Contains(t, out, "State:           FAILED\n")

	sch.script(nil, &schedulerv1.Job{State: schedulerv1.JobState_JOB_STATE_SUCCEEDED, ModelVersion: 2})
	_, _, err = run(t, g, "job", "watch", "job-1")
	require.EqualError(t, err, "job job-1 FAILED: exit status 1: boom", "an ended job is not watched again")
}

func TestJobProgressLine(t *testing.T) {
	t.Parallel()
	mlp := &schedulerv1.JobSpec{Runtime: &schedulerv1.JobSpec_Builtin{Builtin: &schedulerv1.BuiltinRuntime{
		Algorithm: "mlp", Hyperparameters: map[string]string{"epochs": "40"}}}}
	unit, total := progressUnit(mlp)
	require.Equal(t, "epoch", unit)
	require.EqualValues(t, 40, total)
	gbdt := &schedulerv1.JobSpec{Runtime: &schedulerv1.JobSpec_Builtin{Builtin: &schedulerv1.BuiltinRuntime{Algorithm: "gbdt"}}}
	unit, total = progressUnit(gbdt)
	require.Equal(t, "round", unit)
	require.EqualValues(t, 100, total, "the default number of rounds")
	unit, total = progressUnit(&schedulerv1.JobSpec{Runtime: &schedulerv1.JobSpec_Builtin{Builtin: &schedulerv1.BuiltinRuntime{Algorithm: "logistic"}}})
	require.Equal(t, "step", unit)
	require.Zero(t, total)
	proc := &schedulerv1.JobSpec{Runtime: &schedulerv1.JobSpec_Process{Process: &schedulerv1.ProcessRuntime{
		Hyperparameters: map[string]string{"epochs": "5"}}}}
	unit, total = progressUnit(proc)
	require.Equal(t, "epoch", unit)
	require.EqualValues(t, 5, total)

	j := &schedulerv1.Job{State: schedulerv1.JobState_JOB_STATE_RUNNING, Step: 10, Metrics: map[string]float64{
		"train_loss": 0.23456, "validation_loss": 0.3, "validation_accuracy": 0.96491, "validation_f1": 0.9, "lr": 0.001}}
	require.Equal(t, "RUNNING  epoch 10/40 [=====               ]  loss 0.2346  validation_accuracy 0.9649  validation_f1 0.9  1m2s",
		progressLine(j, "epoch", 40, 62*time.Second+300*time.Millisecond))
	require.Equal(t, "QUEUED  0s", progressLine(&schedulerv1.Job{State: schedulerv1.JobState_JOB_STATE_QUEUED}, "step", 0, 0))
	require.Equal(t, "RUNNING  round 7  2s", progressLine(&schedulerv1.Job{State: schedulerv1.JobState_JOB_STATE_RUNNING, Step: 7}, "round", 0, 2*time.Second))
}

// TestJobListKinds: job list shows training jobs by default; --kind
// serving shows the deployments' replicas, --kind all both.
func TestJobListKinds(t *testing.T) {
	t.Parallel()
	g, _, sch := startPlatform(t)
	_, _ = sch.SubmitJob(t.Context(), &schedulerv1.SubmitJobRequest{Spec: &schedulerv1.JobSpec{Model: "bc",
		Runtime: &schedulerv1.JobSpec_Builtin{Builtin: &schedulerv1.BuiltinRuntime{Algorithm: "logistic", Dataset: "bc"}}}})
	_, _ = sch.SubmitJob(t.Context(), &schedulerv1.SubmitJobRequest{Spec: &schedulerv1.JobSpec{Model: "bc",
		Runtime: &schedulerv1.JobSpec_Serving{Serving: &schedulerv1.ServingRuntime{Deployment: "bc", Version: 1}}}})
	_, _ = sch.SubmitJob(t.Context(), &schedulerv1.SubmitJobRequest{Spec: &schedulerv1.JobSpec{Model: "bc",
		Runtime: &schedulerv1.JobSpec_Process{Process: &schedulerv1.ProcessRuntime{Command: "python3"}}}})
	ids := func(args ...string) []string {
		out, _, err := run(t, g, append([]string{"-o", "json", "job", "list"}, args...)...)
		require.NoError(t, err)
		var l struct{ Jobs []struct{ ID string } }
		require.NoError(t, json.Unmarshal([]byte(out), &l), out)
		var got []string
		for _, j := range l.Jobs {
			got = append(got, j.ID)
		}
		return got
	}
	require.Equal(t, []string{"job-1", "job-3"}, ids())
	require.Equal(t, []string{"job-1", "job-3"}, ids("--kind", "training"))
	require.Equal(t, []string{"job-2"}, ids("--kind", "serving"))
	require.Equal(t, []string{"job-1", "job-2", "job-3"}, ids("--kind", "all"))
	_, _, err := run(t, g, "job", "list", "--kind", "batch")
	require.ErrorContains(t, err, "--kind must be training, serving or all")
	out, _, err := run(t, g, "job", "list", "--kind", "serving")
	require.NoError(t, err)
	require.Contains(t, out, "serving:bc@1")
}

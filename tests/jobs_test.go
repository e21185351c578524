//go:build integration

package tests

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
	schedulerv1 "github.com/bmaas/bmaas/api/bmaas/scheduler/v1"
	"github.com/bmaas/bmaas/internal/testenv/registrytest"
	"github.com/bmaas/bmaas/tests/harness"
)

// uploadDatasetFile uploads a CSV from examples/datasets.
func uploadDatasetFile(t *testing.T, c registryv1.RegistryServiceClient, name, file string) *registryv1.DatasetVersion {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "examples", "datasets", file))
	require.NoError(t, err)
	return registrytest.UploadDataset(t, c, name, file, data)
}

// waitJob follows a job until it ends and returns its final state.
func waitJob(t *testing.T, c schedulerv1.SchedulerServiceClient, id string, within time.Duration) *schedulerv1.Job {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), within)
	defer cancel()
	var last *schedulerv1.Job
	for ctx.Err() == nil {
		stream, err := c.WatchJob(ctx, &schedulerv1.WatchJobRequest{Id: id}, grpc.WaitForReady(true))
		if err != nil {
			continue
		}
		for {
			resp, err := stream.Recv()
			if err != nil {
				break
			}
			last = resp.Job
			if ended(last.State) {
				return last
			}
		}
	}
	t.Fatalf("job %s did not end within %s; last: %v", id, within, last)
	return nil
}

func ended(s schedulerv1.JobState) bool {
	return s == schedulerv1.JobState_JOB_STATE_SUCCEEDED || s == schedulerv1.JobState_JOB_STATE_FAILED ||
		s == schedulerv1.JobState_JOB_STATE_CANCELLED
}

func builtinSpec(model, dataset, algorithm string, params map[string]string) *schedulerv1.JobSpec {
	return &schedulerv1.JobSpec{Model: model, Runtime: &schedulerv1.JobSpec_Builtin{Builtin: &schedulerv1.BuiltinRuntime{
		Algorithm: algorithm, Hyperparameters: params, Dataset: dataset, TargetColumn: "target", Seed: 7}}}
}

func TestBuiltinJobEndToEnd(t *testing.T) {
	t.Parallel()
	c := harness.Start(t)
	ctx := t.Context()
	sc := schedulerv1.NewSchedulerServiceClient(c.Conn)
	dv := uploadDatasetFile(t, c.Registry, "breast-cancer", "breast_cancer.csv")
	_, err := c.Registry.CreateModel(ctx, &registryv1.CreateModelRequest{Model: &registryv1.Model{Name: "bc"}})
	require.NoError(t, err)

	sub, err := sc.SubmitJob(ctx, &schedulerv1.SubmitJobRequest{Spec: builtinSpec("bc", "breast-cancer", "logistic", map[string]string{"C": "1"})})
	require.NoError(t, err)
	job := waitJob(t, sc, sub.Job.Id, 2*time.Minute)
	require.Equal(t, schedulerv1.JobState_JOB_STATE_SUCCEEDED, job.State, "reason: %s", job.Reason)
	require.Positive(t, job.ModelVersion)

	v, err := c.Registry.GetModelVersion(ctx, &registryv1.GetModelVersionRequest{Model: "bc", Version: "latest"})
	require.NoError(t, err)
	mv := v.Version
	require.Equal(t, job.ModelVersion, mv.Version)
	require.Equal(t, registryv1.VersionStatus_VERSION_STATUS_READY, mv.Status)
	require.Equal(t, registryv1.ModelFormat_MODEL_FORMAT_NATIVE, mv.Format)
	require.Equal(t, "1", mv.Hyperparameters["C"])
	require.NotEmpty(t, mv.Metrics)
	require.Equal(t, sub.Job.Id, mv.Lineage.GetJobId())
	require.Equal(t, "breast-cancer", mv.Lineage.GetDataset())
	require.Equal(t, dv.Version, mv.Lineage.GetDatasetVersion())
	require.NotEmpty(t, mv.TrainingStats.GetColumns())

	// Every state move is recorded with its time.
	var states []schedulerv1.JobState
	for _, h := range job.History {
		require.NotNil(t, h.Time)
		states = append(states, h.State)
	}
	require.Equal(t, schedulerv1.JobState_JOB_STATE_QUEUED, states[0])
	require.Contains(t, states, schedulerv1.JobState_JOB_STATE_RUNNING)
}

func TestJobBadInput(t *testing.T) {
	t.Parallel()
	c := harness.Start(t)
	ctx := t.Context()
	sc := schedulerv1.NewSchedulerServiceClient(c.Conn)
	uploadDatasetFile(t, c.Registry, "iris", "iris.csv")
	_, err := c.Registry.CreateModel(ctx, &registryv1.CreateModelRequest{Model: &registryv1.Model{Name: "iris"}})
	require.NoError(t, err)

	bad := []struct {
		name string
		spec *schedulerv1.JobSpec
		msg  string
	}{
		{"unknown dataset", builtinSpec("iris", "nope", "logistic", nil), "nope"},
		{"unknown model", builtinSpec("nope", "iris", "logistic", nil), "nope"},
		{"unknown algorithm", builtinSpec("iris", "iris", "forest", nil), "forest"},
		{"wrong type", builtinSpec("iris", "iris", "logistic", map[string]string{"C": "lots"}), `"C"`},
		{"out of range", builtinSpec("iris", "iris", "mlp", map[string]string{"lr": "-1"}), `"lr"`},
	}
	for _, tc := range bad {
		_, err := sc.SubmitJob(ctx, &schedulerv1.SubmitJobRequest{Spec: tc.spec})
		require.Equal(t, codes.InvalidArgument, status.Code(err), "%s: %v", tc.name, err)
		require.Contains(t, status.Convert(err).Message(), tc.msg, tc.name)
	}

	// Resources no node can ever offer: the reason says why, no hang.
	spec := builtinSpec("iris", "iris", "logistic", nil)
	spec.Resources = &schedulerv1.Resources{Gpus: 8}
	sub, err := sc.SubmitJob(ctx, &schedulerv1.SubmitJobRequest{Spec: spec})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		j, err := sc.GetJob(ctx, &schedulerv1.GetJobRequest{Id: sub.Job.Id})
		return err == nil && strings.HasPrefix(j.Job.Reason, "Unschedulable") && strings.Contains(j.Job.Reason, "8 GPUs")
	}, 30*time.Second, 20*time.Millisecond)

	// A command that does not exist: FAILED with the reason.
	proc := &schedulerv1.JobSpec{Model: "iris", Runtime: &schedulerv1.JobSpec_Process{Process: &schedulerv1.ProcessRuntime{
		Command: "no-such-command-bmaas"}}}
	sub, err = sc.SubmitJob(ctx, &schedulerv1.SubmitJobRequest{Spec: proc})
	require.NoError(t, err)
	job := waitJob(t, sc, sub.Job.Id, time.Minute)
	require.Equal(t, schedulerv1.JobState_JOB_STATE_FAILED, job.State)
	require.Contains(t, job.Reason, "no-such-command-bmaas")
}

func hasTorch() bool {
	return exec.Command("/usr/bin/python3", "-c", "import torch, onnx").Run() == nil
}

func TestPyTorchProcessJob(t *testing.T) {
	t.Parallel()
	if !hasTorch() {
		t.Skip("/usr/bin/python3 lacks torch and onnx (Debian's python3-torch and python3-onnx; .ci/run installs them)")
	}
	c := harness.Start(t)
	ctx := t.Context()
	sc := schedulerv1.NewSchedulerServiceClient(c.Conn)
	uploadDatasetFile(t, c.Registry, "breast-cancer", "breast_cancer.csv")
	_, err := c.Registry.CreateModel(ctx, &registryv1.CreateModelRequest{Model: &registryv1.Model{Name: "torch-bc"}})
	require.NoError(t, err)
	dir := examplesDir(t)
	spec := &schedulerv1.JobSpec{Model: "torch-bc", Runtime: &schedulerv1.JobSpec_Process{Process: &schedulerv1.ProcessRuntime{
		Command: "/usr/bin/python3", Args: []string{"train.py"}, Workdir: dir, Dataset: "breast-cancer",
		Hyperparameters: map[string]string{"epochs": "3", "hidden": "16"}}}}
	sub, err := sc.SubmitJob(ctx, &schedulerv1.SubmitJobRequest{Spec: spec})
	require.NoError(t, err)
	job := waitJob(t, sc, sub.Job.Id, 3*time.Minute)
	require.Equal(t, schedulerv1.JobState_JOB_STATE_SUCCEEDED, job.State, "reason: %s", job.Reason)

	v, err := c.Registry.GetModelVersion(ctx, &registryv1.GetModelVersionRequest{Model: "torch-bc", Version: "latest"})
	require.NoError(t, err)
	require.Equal(t, registryv1.ModelFormat_MODEL_FORMAT_ONNX, v.Version.Format)
	require.Equal(t, registryv1.VersionStatus_VERSION_STATUS_READY, v.Version.Status)
	onnx := downloadBytes(t, c.Registry, "torch-bc", "latest")
	require.Equal(t, v.Version.SizeBytes, int64(len(onnx)))
	require.Contains(t, string(onnx), "input", "the ONNX graph names its input")
}

func examplesDir(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("..", "examples", "pytorch"))
	require.NoError(t, err)
	return dir
}

//go:build integration

package tests

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	evaluatorv1 "github.com/bmaas/bmaas/api/bmaas/evaluator/v1"
	gatewayv1 "github.com/bmaas/bmaas/api/bmaas/gateway/v1"
	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
	schedulerv1 "github.com/bmaas/bmaas/api/bmaas/scheduler/v1"
	"github.com/bmaas/bmaas/tests/harness"
)

// TestProcessVersionEvaluatedThroughItsRuntime: the PyTorch example's ONNX
// version, which the evaluator cannot run in process, is evaluated through
// its serving runtime on the rows the script held out (bmaas.train.holdout):
// the accuracy equals what the script reported, automatically and on
// request, and the evaluation's deployment is gone afterwards. A version
// with no signature naming its columns is refused with the reason.
func TestProcessVersionEvaluatedThroughItsRuntime(t *testing.T) {
	t.Parallel()
	if !hasTorch() {
		t.Skip("/usr/bin/python3 lacks torch and onnx (Debian's python3-torch and python3-onnx; .ci/run installs them)")
	}
	c := harness.Start(t)
	ctx := t.Context()
	sc := schedulerv1.NewSchedulerServiceClient(c.Conn)
	ec := evaluatorv1.NewEvaluatorServiceClient(c.Conn)
	dc := gatewayv1.NewDeploymentServiceClient(c.Conn)
	uploadDatasetFile(t, c.Registry, "breast-cancer", "breast_cancer.csv")
	_, err := c.Registry.CreateModel(ctx, &registryv1.CreateModelRequest{Model: &registryv1.Model{Name: "torch-eval"}})
	require.NoError(t, err)
	spec := &schedulerv1.JobSpec{Model: "torch-eval", Runtime: &schedulerv1.JobSpec_Process{Process: &schedulerv1.ProcessRuntime{
		Command: "/usr/bin/python3", Args: []string{"train.py"}, Workdir: examplesDir(t), Dataset: "breast-cancer",
		Hyperparameters: map[string]string{"epochs": "3", "hidden": "16", "seed": "3", "validation_fraction": "0.25"}}}}
	sub, err := sc.SubmitJob(ctx, &schedulerv1.SubmitJobRequest{Spec: spec})
	require.NoError(t, err)
	job := waitJob(t, sc, sub.Job.Id, 3*time.Minute)
	require.Equal(t, schedulerv1.JobState_JOB_STATE_SUCCEEDED, job.State, "reason: %s", job.Reason)
	v, err := c.Registry.GetModelVersion(ctx, &registryv1.GetModelVersionRequest{Model: "torch-eval", Version: "latest"})
	require.NoError(t, err)
	require.Equal(t, registryv1.ModelFormat_MODEL_FORMAT_ONNX, v.Version.Format)
	reported, ok := v.Version.Metrics["validation_accuracy"]
	require.True(t, ok, "the script reports its validation accuracy: %v", v.Version.Metrics)

	// Automatically, on the job's split.
	var auto *evaluatorv1.Evaluation
	eventually(t, 2*time.Minute, "the automatic evaluation", func() bool {
		l, err := ec.ListEvaluations(ctx, &evaluatorv1.ListEvaluationsRequest{Model: "torch-eval", Version: v.Version.Version})
		require.NoError(t, err)
		for _, ev := range l.Evaluations {
			if ev.JobId == sub.Job.Id {
				auto = ev
				return true
			}
		}
		return false
	})
	require.Equal(t, evaluatorv1.EvaluationState_EVALUATION_STATE_SUCCEEDED, auto.State, auto.Message)
	require.InDelta(t, reported, auto.Metrics["accuracy"], 1e-6, "the script's accuracy (a float32) on the same rows")
	require.Equal(t, int64(142), auto.Rows, "0.25 of the 569 rows")
	require.True(t, strings.HasPrefix(auto.RunsOn, "job:"), auto.RunsOn)

	// On request, on a whole dataset: every row scored.
	ev, err := ec.CreateEvaluation(ctx, &evaluatorv1.CreateEvaluationRequest{Evaluation: &evaluatorv1.Evaluation{
		Model: "torch-eval", ModelVersion: v.Version.Version, Dataset: "breast-cancer"}})
	require.NoError(t, err)
	require.Equal(t, int64(569), ev.Evaluation.Rows)
	require.Greater(t, ev.Evaluation.Metrics["accuracy"], 0.8)
	require.Len(t, ev.Evaluation.ConfusionMatrix.GetLabels(), 2)

	eventually(t, 30*time.Second, "the evaluations' deployments deleted", func() bool {
		l, err := dc.ListDeployments(ctx, &gatewayv1.ListDeploymentsRequest{})
		require.NoError(t, err)
		return len(l.Deployments) == 0
	})

	// An ONNX upload without a signature: the evaluator cannot tell the
	// columns, and says so.
	bare := uploadBytes(t, c.Registry, "torch-eval", downloadBytes(t, c.Registry, "torch-eval", "1"))
	_, err = ec.CreateEvaluation(ctx, &evaluatorv1.CreateEvaluationRequest{Evaluation: &evaluatorv1.Evaluation{
		Model: "torch-eval", ModelVersion: bare.Version, Dataset: "breast-cancer"}})
	require.Equal(t, codes.FailedPrecondition, status.Code(err), "%v", err)
	require.Contains(t, status.Convert(err).Message(), "signature")
}

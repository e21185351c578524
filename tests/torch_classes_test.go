//go:build integration

package tests

import (
	"encoding/json"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	gatewayv1 "github.com/bmaas/bmaas/api/bmaas/gateway/v1"
	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
	schedulerv1 "github.com/bmaas/bmaas/api/bmaas/scheduler/v1"
	"github.com/bmaas/bmaas/tests/harness"
)

// TestPyTorchClassifierServesLabelsAndProbabilities: the PyTorch example
// trained as a process job records its classes and that its ONNX output
// is logits in the version's signature, and its deployment answers class
// labels and probabilities, as a native classifier's does.
func TestPyTorchClassifierServesLabelsAndProbabilities(t *testing.T) {
	t.Parallel()
	if !hasTorch() {
		t.Skip("/usr/bin/python3 lacks torch and onnx (Debian's python3-torch and python3-onnx; .ci/run installs them)")
	}
	c := harness.Start(t, withFastGateway())
	ctx := t.Context()
	sc := schedulerv1.NewSchedulerServiceClient(c.Conn)
	uploadDatasetFile(t, c.Registry, "iris", "iris.csv")
	_, err := c.Registry.CreateModel(ctx, &registryv1.CreateModelRequest{Model: &registryv1.Model{Name: "torch-iris"}})
	require.NoError(t, err)
	spec := &schedulerv1.JobSpec{Model: "torch-iris", Runtime: &schedulerv1.JobSpec_Process{Process: &schedulerv1.ProcessRuntime{
		Command: "/usr/bin/python3", Args: []string{"train.py"}, Workdir: examplesDir(t), Dataset: "iris",
		Hyperparameters: map[string]string{"epochs": "30", "hidden": "16", "lr": "0.01"}}}}
	sub, err := sc.SubmitJob(ctx, &schedulerv1.SubmitJobRequest{Spec: spec})
	require.NoError(t, err)
	job := waitJob(t, sc, sub.Job.Id, 3*time.Minute)
	require.Equal(t, schedulerv1.JobState_JOB_STATE_SUCCEEDED, job.State, "reason: %s", job.Reason)

	v, err := c.Registry.GetModelVersion(ctx, &registryv1.GetModelVersionRequest{Model: "torch-iris", Version: "latest"})
	require.NoError(t, err)
	sig := v.Version.GetSignature()
	require.Len(t, sig.GetOutputs(), 1, "signature: %v", sig)
	out := sig.Outputs[0]
	require.Equal(t, []string{"0", "1", "2"}, out.Labels)
	require.Equal(t, "OUTPUT_KIND_LOGITS", out.Kind.String())
	require.Len(t, sig.GetInputs(), 1)
	require.Equal(t, []string{"sepal_length_cm", "sepal_width_cm", "petal_length_cm", "petal_width_cm"}, sig.Inputs[0].Columns)

	_, err = gatewayv1.NewDeploymentServiceClient(c.Conn).CreateDeployment(ctx, &gatewayv1.CreateDeploymentRequest{
		Deployment: &gatewayv1.Deployment{Model: "torch-iris@latest", MinReplicas: 1, MaxReplicas: 1}})
	require.NoError(t, err)
	eventually(t, time.Minute, "deployment ready", func() bool {
		code, _ := httpDo(t, c, "GET", "/v2/models/torch-iris/ready", nil)
		return code == http.StatusOK
	})
	rows := [][]float64{{5.1, 3.5, 1.4, 0.2}, {6.7, 3.0, 5.2, 2.3}}
	code, b := httpDo(t, c, "POST", "/v1/models/torch-iris:predict", map[string]any{"instances": rows})
	require.Equal(t, http.StatusOK, code, string(b))
	var resp struct {
		Predictions   []string    `json:"predictions"`
		Probabilities [][]float64 `json:"probabilities"`
	}
	require.NoError(t, json.Unmarshal(b, &resp), string(b))
	require.Equal(t, []string{"0", "2"}, resp.Predictions, string(b))
	require.Len(t, resp.Probabilities, len(rows))
	for i, p := range resp.Probabilities {
		require.Len(t, p, 3)
		require.InDelta(t, 1, p[0]+p[1]+p[2], 1e-6)
		best := slices.Index(p, slices.Max(p))
		require.Equal(t, resp.Predictions[i], out.Labels[best])
	}

	// The v2 protocol names the same outputs as for a native classifier.
	code, b = httpDo(t, c, "GET", "/v2/models/torch-iris", nil)
	require.Equal(t, http.StatusOK, code, string(b))
	require.Contains(t, string(b), `"predictions"`)
	require.Contains(t, string(b), `"probabilities"`)
}

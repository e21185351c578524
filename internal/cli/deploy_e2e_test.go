//go:build integration

package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
	schedulerv1 "github.com/bmaas/bmaas/api/bmaas/scheduler/v1"
	"github.com/bmaas/bmaas/api/inference"
	"github.com/bmaas/bmaas/internal/app"
	"github.com/bmaas/bmaas/pkg/ml/artifact"
	"github.com/bmaas/bmaas/pkg/ml/dataset"
	"github.com/bmaas/bmaas/tests/harness"
)

// TestDeployAndPredict: train logistic regression on iris, deploy it with
// the CLI, predict the CSV through the gateway: the predictions and the
// probabilities are exactly the artifact's local ones.
func TestDeployAndPredict(t *testing.T) {
	t.Parallel()
	c := harness.Start(t, func(cfg *app.Config) { cfg.Gateway.ReconcileInterval = 100 * time.Millisecond })
	addr, ctx := c.Addrs.GRPC, t.Context()
	csvPath := filepath.Join("..", "..", "examples", "datasets", "iris.csv")
	_, err := cliAt(t, addr, "dataset", "upload", "iris", csvPath)
	require.NoError(t, err)
	_, err = cliAt(t, addr, "model", "create", "iris")
	require.NoError(t, err)
	sc := schedulerv1.NewSchedulerServiceClient(c.Conn)
	sub, err := sc.SubmitJob(ctx, &schedulerv1.SubmitJobRequest{Spec: &schedulerv1.JobSpec{Model: "iris",
		Runtime: &schedulerv1.JobSpec_Builtin{Builtin: &schedulerv1.BuiltinRuntime{Algorithm: "logistic", Dataset: "iris", TargetColumn: "target", Seed: 7}}}})
	require.NoError(t, err)
	pollUntil(t, "training succeeded", func() bool {
		j, err := sc.GetJob(ctx, &schedulerv1.GetJobRequest{Id: sub.Job.Id})
		require.NoError(t, err)
		require.NotEqual(t, schedulerv1.JobState_JOB_STATE_FAILED, j.Job.State, j.Job.Reason)
		return j.Job.State == schedulerv1.JobState_JOB_STATE_SUCCEEDED
	})

	out, err := cliAt(t, addr, "deploy", "create", "--model", "iris@1", "--min", "1", "--max", "2", "--max-batch-size", "8", "--max-queue-delay", "1ms")
	require.NoError(t, err)
	require.Contains(t, out, "iris@1")
	_, err = cliAt(t, addr, "deploy", "create", "--model", "iris@1")
	require.Equal(t, codes.AlreadyExists, status.Code(err), "%v", err)
	pollUntil(t, "a ready replica", func() bool {
		out, err := cliAt(t, addr, "-o", "json", "deploy", "get", "iris")
		require.NoError(t, err)
		var d struct {
			Status struct {
				ReadyReplicas int `json:"ready_replicas"`
			} `json:"status"`
		}
		require.NoError(t, json.Unmarshal([]byte(out), &d))
		return d.Status.ReadyReplicas > 0
	})
	out, err = cliAt(t, addr, "deploy", "list")
	require.NoError(t, err)
	require.Contains(t, out, "iris@1")

	out, err = cliAt(t, addr, "-o", "json", "predict", "--deployment", "iris", "--input", csvPath)
	require.NoError(t, err)
	var got prediction
	require.NoError(t, json.Unmarshal([]byte(out), &got))

	// The local answer of the registered artifact, as `bmaas ml predict` gives it.
	dir := t.TempDir()
	_, err = cliAt(t, addr, "model", "version", "download", "iris@1", "-o", filepath.Join(dir, "iris.bmaas"))
	require.NoError(t, err)
	am, err := artifact.Load(filepath.Join(dir, "iris.bmaas"))
	require.NoError(t, err)
	f, err := dataset.ReadFile(csvPath, dataset.ReadOptions{})
	require.NoError(t, err)
	k := am.NumOutputs()
	want := make([]float64, f.NumRows()*k)
	require.NoError(t, am.NewPredictor().PredictFrame(f, want))
	classes := make([]int, f.NumRows())
	artifact.Classes(want, k, classes)
	require.Len(t, got.Predictions, f.NumRows())
	require.Equal(t, am.Labels(), got.Labels)
	for r := range f.NumRows() {
		require.Equal(t, am.Labels()[classes[r]], got.Predictions[r], "row %d", r+1)
		require.Equal(t, want[r*k:(r+1)*k], got.Probabilities[r], "row %d", r+1)
	}

	// The same rows as JSON give the same answer.
	rowsJSON := filepath.Join(dir, "rows.json")
	writeJSONRows(t, rowsJSON, f, am.Inputs())
	out, err = cliAt(t, addr, "-o", "json", "predict", "--deployment", "iris", "--input", rowsJSON)
	require.NoError(t, err)
	var got2 prediction
	require.NoError(t, json.Unmarshal([]byte(out), &got2))
	require.Equal(t, got.Probabilities, got2.Probabilities)

	_, err = cliAt(t, addr, "predict", "--deployment", "nope", "--input", rowsJSON)
	require.Equal(t, codes.NotFound, status.Code(err), "%v", err)
	out, err = cliAt(t, addr, "deploy", "scale", "iris", "--max", "3")
	require.NoError(t, err)
	require.Contains(t, out, "min 1, max 3")
	_, err = cliAt(t, addr, "deploy", "rollback", "iris")
	require.Equal(t, codes.FailedPrecondition, status.Code(err), "%v", err)
	out, err = cliAt(t, addr, "deploy", "delete", "iris")
	require.NoError(t, err)
	require.Contains(t, out, "deployment iris deleted")
	_, err = c.Registry.GetModelVersion(ctx, &registryv1.GetModelVersionRequest{Model: "iris", Version: "1"})
	require.NoError(t, err)
}

func writeJSONRows(t *testing.T, path string, f *dataset.Frame, cols []string) {
	t.Helper()
	rows := make([][]float64, f.NumRows())
	for _, name := range cols {
		col, err := f.Col(name)
		require.NoError(t, err)
		for r := range rows {
			rows[r] = append(rows[r], col.Num[r])
		}
	}
	b, err := json.Marshal(map[string]any{"instances": rows})
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, b, 0o644))
}

// pollUntil polls cond every 50 ms for up to a minute.
func pollUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within a minute", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestPredictBeforeDeploy: a model that exists but is not deployed yet is
// not "model not found": the gateway says no deployment has the name, and
// the CLI says which deployments there are.
func TestPredictBeforeDeploy(t *testing.T) {
	t.Parallel()
	c := harness.Start(t)
	addr := c.Addrs.GRPC
	_, err := cliAt(t, addr, "model", "create", "fraud")
	require.NoError(t, err)
	_, err = inference.NewGRPCInferenceServiceClient(c.Conn).ModelMetadata(t.Context(), &inference.ModelMetadataRequest{Name: "fraud"})
	require.Equal(t, codes.NotFound, status.Code(err), "%v", err)
	require.Equal(t, `deployment "fraud" not found`, status.Convert(err).Message())

	rows := filepath.Join(t.TempDir(), "rows.json")
	require.NoError(t, os.WriteFile(rows, []byte(`[[1, 2]]`), 0o644))
	_, err = cliAt(t, addr, "predict", "--deployment", "fraud", "--input", rows)
	require.ErrorContains(t, err, `no deployment named "fraud" (there are no deployments)`)
}

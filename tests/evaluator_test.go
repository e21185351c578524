//go:build integration

package tests

import (
	"bytes"
	"encoding/csv"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	evaluatorv1 "github.com/bmaas/bmaas/api/bmaas/evaluator/v1"
	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
	schedulerv1 "github.com/bmaas/bmaas/api/bmaas/scheduler/v1"
	"github.com/bmaas/bmaas/internal/testenv/registrytest"
	"github.com/bmaas/bmaas/tests/harness"
)

// uploadCSV uploads rows (header first) as a dataset.
func uploadCSV(t *testing.T, c registryv1.RegistryServiceClient, name string, rows [][]string) *registryv1.DatasetVersion {
	t.Helper()
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	require.NoError(t, w.WriteAll(rows))
	return registrytest.UploadDataset(t, c, name, name+".csv", buf.Bytes())
}

func readExampleCSV(t *testing.T, file string) [][]string {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "examples", "datasets", file))
	require.NoError(t, err)
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	require.NoError(t, err)
	return rows
}

// trainVersion runs a builtin job on model and returns the job.
func trainJob(t *testing.T, sc schedulerv1.SchedulerServiceClient, model, dataset, algorithm string, params map[string]string) *schedulerv1.Job {
	t.Helper()
	sub, err := sc.SubmitJob(t.Context(), &schedulerv1.SubmitJobRequest{Spec: builtinSpec(model, dataset, algorithm, params)})
	require.NoError(t, err)
	job := waitJob(t, sc, sub.Job.Id, 2*time.Minute)
	require.Equal(t, schedulerv1.JobState_JOB_STATE_SUCCEEDED, job.State, "reason: %s", job.Reason)
	return job
}

func TestEvaluationMetricsDriftAndBadInput(t *testing.T) {
	t.Parallel()
	c := harness.Start(t)
	ctx := t.Context()
	sc := schedulerv1.NewSchedulerServiceClient(c.Conn)
	ec := evaluatorv1.NewEvaluatorServiceClient(c.Conn)
	iris := readExampleCSV(t, "iris.csv")
	uploadCSV(t, c.Registry, "iris", iris)
	_, err := c.Registry.CreateModel(ctx, &registryv1.CreateModelRequest{Model: &registryv1.Model{Name: "iris"}})
	require.NoError(t, err)
	job := trainJob(t, sc, "iris", "iris", "logistic", map[string]string{"C": "10"})

	// On the job's test split the evaluation reproduces test_accuracy.
	ev, err := ec.CreateEvaluation(ctx, &evaluatorv1.CreateEvaluationRequest{Evaluation: &evaluatorv1.Evaluation{
		Model: "iris", Version: "latest", JobId: job.Id}})
	require.NoError(t, err)
	v, err := c.Registry.GetModelVersion(ctx, &registryv1.GetModelVersionRequest{Model: "iris", Version: "latest"})
	require.NoError(t, err)
	require.InDelta(t, v.Version.Metrics["test_accuracy"], ev.Evaluation.Metrics["accuracy"], 1e-12)
	require.Equal(t, int64(30), ev.Evaluation.Rows)
	// The enums and the numbers, with the deprecated strings beside them.
	require.Equal(t, evaluatorv1.EvaluationTrigger_EVALUATION_TRIGGER_MANUAL, ev.Evaluation.TriggerKind)
	require.Equal(t, "manual", ev.Evaluation.Trigger)
	require.Equal(t, evaluatorv1.EvaluationSplit_EVALUATION_SPLIT_TEST, ev.Evaluation.SplitKind)
	require.Equal(t, "test", ev.Evaluation.Split)
	require.Equal(t, v.Version.Version, ev.Evaluation.ModelVersion)
	require.Equal(t, strconv.FormatInt(v.Version.Version, 10), ev.Evaluation.Version)
	cm := ev.Evaluation.ConfusionMatrix
	require.Len(t, cm.Labels, 3)
	var total int64
	for _, n := range cm.Counts {
		total += n
	}
	require.Equal(t, int64(30), total)

	// A shifted copy: petal length doubled drifts, the others do not.
	shifted := [][]string{iris[0]}
	for _, r := range iris[1:] {
		x, err := strconv.ParseFloat(r[2], 64)
		require.NoError(t, err)
		shifted = append(shifted, []string{r[0], r[1], strconv.FormatFloat(2*x+3, 'g', -1, 64), r[3], r[4]})
	}
	uploadCSV(t, c.Registry, "iris-shifted", shifted)
	ev, err = ec.CreateEvaluation(ctx, &evaluatorv1.CreateEvaluationRequest{Evaluation: &evaluatorv1.Evaluation{
		Model: "iris", ModelVersion: v.Version.Version, Dataset: "iris-shifted", DatasetVersionNumber: 1}})
	require.NoError(t, err)
	require.Equal(t, evaluatorv1.EvaluationSplit_EVALUATION_SPLIT_ALL, ev.Evaluation.SplitKind)
	require.Equal(t, "all", ev.Evaluation.Split)
	require.Equal(t, int64(1), ev.Evaluation.DatasetVersionNumber)
	require.Equal(t, "1", ev.Evaluation.DatasetVersion)
	drift := map[string]*evaluatorv1.FeatureDrift{}
	for _, d := range ev.Evaluation.Drift {
		drift[d.Column] = d
	}
	require.True(t, drift["petal_length_cm"].Drifted, "%v", drift["petal_length_cm"])
	require.Greater(t, drift["petal_length_cm"].MeanShift, 2.0)
	require.False(t, drift["sepal_width_cm"].Drifted, "%v", drift["sepal_width_cm"])
	got, err := ec.GetEvaluation(ctx, &evaluatorv1.GetEvaluationRequest{Id: ev.Evaluation.Id})
	require.NoError(t, err)
	require.Equal(t, ev.Evaluation.Metrics["accuracy"], got.Evaluation.Metrics["accuracy"])
	v, err = c.Registry.GetModelVersion(ctx, &registryv1.GetModelVersionRequest{Model: "iris", Version: "latest"})
	require.NoError(t, err)
	require.Contains(t, v.Version.Metrics, "eval_iris_shifted_accuracy")

	// A dataset without a column the signature needs: the error names it
	// and nothing is stored.
	var cut [][]string
	for _, r := range iris {
		cut = append(cut, []string{r[0], r[1], r[3], r[4]})
	}
	uploadCSV(t, c.Registry, "iris-cut", cut)
	_, err = ec.CreateEvaluation(ctx, &evaluatorv1.CreateEvaluationRequest{Evaluation: &evaluatorv1.Evaluation{
		Model: "iris", Dataset: "iris-cut"}})
	require.Equal(t, codes.InvalidArgument, status.Code(err), "%v", err)
	require.Contains(t, err.Error(), "petal_length_cm")
	none, err := ec.ListEvaluations(ctx, &evaluatorv1.ListEvaluationsRequest{Model: "iris", Dataset: "iris-cut"})
	require.NoError(t, err)
	require.Empty(t, none.Evaluations)
	filtered, err := ec.ListEvaluations(ctx, &evaluatorv1.ListEvaluationsRequest{Model: "iris", Dataset: "iris-shifted"})
	require.NoError(t, err)
	require.Len(t, filtered.Evaluations, 1)
}

func itoa64(n int64) string { return strconv.FormatInt(n, 10) }

func protojsonFloat(x float64) string { return strconv.FormatFloat(x, 'g', -1, 64) }

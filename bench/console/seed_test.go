package console

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	commonv1 "github.com/bmaas/bmaas/api/bmaas/common/v1"
	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
	"github.com/bmaas/bmaas/tests/harness"
)

const (
	// models and versions are the registry's size in the benchmark.
	models   = 1000
	versions = 10000
	// bigVersions of them belong to one model (bigModel); the others
	// share the rest evenly.
	bigVersions = versions - (models-1)*9
	// workers upload in parallel, each one model's versions in order (a
	// model's versions are numbered in one sequence).
	workers = 16
)

// bigModel is the model with many versions.
var bigModel = modelName(0)

func modelName(i int) string { return fmt.Sprintf("model-%04d", i) }

// seedStats are the timings of seeding the registry.
type seedStats struct {
	models, versions time.Duration
}

// seed creates the models, then uploads every version: a 64-byte
// artifact with the metadata a trained version carries (signature,
// metrics, hyperparameters, training statistics), through the registry's
// streaming upload, workers at a time.
func seed(b *testing.B, c *harness.Cluster) seedStats {
	b.Helper()
	ctx := context.Background()
	var st seedStats
	start := time.Now()
	parallel(b, models, func(i int) error {
		_, err := c.Registry.CreateModel(ctx, &registryv1.CreateModelRequest{Model: &registryv1.Model{
			Name: modelName(i), Description: "a classifier of the console benchmark",
			TaskType: registryv1.TaskType_TASK_TYPE_MULTICLASS_CLASSIFICATION, Labels: map[string]string{"team": fmt.Sprintf("t%d", i%7)}}})
		return err
	})
	st.models = time.Since(start)
	start = time.Now()
	var done atomic.Int64
	parallel(b, models, func(i int) error {
		n := 9
		if i == 0 {
			n = bigVersions
		}
		for v := 1; v <= n; v++ {
			if _, err := uploadVersion(ctx, c, modelName(i), v); err != nil {
				return err
			}
			done.Add(1)
		}
		return nil
	})
	st.versions = time.Since(start)
	if got := done.Load(); got != versions {
		b.Fatalf("uploaded %d versions, want %d", got, versions)
	}
	return st
}

// parallel runs fn(0..n-1) on workers goroutines and fails b on the
// first error.
func parallel(b *testing.B, n int, fn func(i int) error) {
	b.Helper()
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if err := fn(i); err != nil {
					errs <- fmt.Errorf("item %d: %w", i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
}

var columns = []string{"sepal_length_cm", "sepal_width_cm", "petal_length_cm", "petal_width_cm"}

// uploadVersion uploads a version of model, the v-th: a tiny artifact of
// its own, and metrics that move with v so the charts across versions
// have a shape. It returns the version's number.
func uploadVersion(ctx context.Context, c *harness.Cluster, model string, v int) (int64, error) {
	data := fmt.Appendf(nil, "%-64s", fmt.Sprintf("%s v%d", model, v))
	sum := sha256.Sum256(data)
	acc := 0.80 + 0.15*float64(v%50)/50
	spec := &registryv1.ModelVersionSpec{
		Format:   registryv1.ModelFormat_MODEL_FORMAT_NATIVE,
		Filename: "model.bmaas",
		Signature: &commonv1.Signature{
			Inputs:  []*commonv1.TensorSpec{{Name: "input", Datatype: commonv1.DataType_DATA_TYPE_FP32, Shape: []int64{-1, 4}, Columns: columns}},
			Outputs: []*commonv1.TensorSpec{{Name: "probabilities", Datatype: commonv1.DataType_DATA_TYPE_FP32, Shape: []int64{-1, 3}, Labels: []string{"setosa", "versicolor", "virginica"}, Kind: commonv1.OutputKind_OUTPUT_KIND_PROBABILITIES}},
		},
		Metrics: map[string]float64{
			"train_accuracy": acc + 0.03, "validation_accuracy": acc, "test_accuracy": acc - 0.01,
			"train_log_loss": 1 - acc, "validation_log_loss": 1.1 - acc, "test_log_loss": 1.12 - acc,
		},
		Hyperparameters: map[string]string{"algorithm": "logistic", "l2": fmt.Sprint(0.001 * float64(v%10+1)), "max_iter": "200"},
		TrainingStats:   trainingStats(),
	}
	st, err := c.Registry.CreateModelVersion(ctx)
	if err != nil {
		return 0, err
	}
	if err := st.Send(&registryv1.CreateModelVersionRequest{Payload: &registryv1.CreateModelVersionRequest_Header{Header: &registryv1.CreateModelVersionHeader{
		Model: model, Spec: spec, Sha256: hex.EncodeToString(sum[:]), SizeBytes: int64(len(data))}}}); err != nil {
		return 0, err
	}
	if err := st.Send(&registryv1.CreateModelVersionRequest{Payload: &registryv1.CreateModelVersionRequest_Chunk{Chunk: data}}); err != nil {
		return 0, err
	}
	resp, err := st.CloseAndRecv()
	return resp.GetVersion().GetVersion(), err
}

// trainingStats is the statistics of a 150-row, 5-column training set
// with 10-bin histograms, as a builtin training job records them.
func trainingStats() *commonv1.DatasetStats {
	st := &commonv1.DatasetStats{Rows: 150}
	for i, name := range columns {
		h := &commonv1.Histogram{}
		for k := range 11 {
			h.Edges = append(h.Edges, float64(i)+0.3*float64(k))
		}
		for k := range 10 {
			h.Counts = append(h.Counts, int64(5+k*(10-k)/2))
		}
		st.Columns = append(st.Columns, &commonv1.ColumnStats{Name: name, Kind: commonv1.ValueKind_VALUE_KIND_NUMERIC,
			Count: 150, Mean: float64(i) + 1.5, Std: 0.8, Min: float64(i), Max: float64(i) + 3, Histogram: h})
	}
	st.Columns = append(st.Columns, &commonv1.ColumnStats{Name: "species", Kind: commonv1.ValueKind_VALUE_KIND_CATEGORICAL, Count: 150, Distinct: 3,
		TopCategories: []*commonv1.CategoryCount{{Value: "setosa", Count: 50}, {Value: "versicolor", Count: 50}, {Value: "virginica", Count: 50}}})
	return st
}

package train

import (
	"context"
	"fmt"
	"slices"

	mlv1 "github.com/bmaas/bmaas/api/bmaas/ml/v1"
	"github.com/bmaas/bmaas/pkg/ml/artifact"
	"github.com/bmaas/bmaas/pkg/ml/dataset"
	"github.com/bmaas/bmaas/pkg/ml/linear"
	"github.com/bmaas/bmaas/pkg/ml/preprocess"
)

// job is a prepared run: parameters, target, splits, fitted pipeline.
type job struct {
	spec     Spec
	params   Params
	tgt      *target
	k        int // classes (classification) or 1
	splits   map[string][]int
	frames   map[string]*dataset.Frame
	pipe     *preprocess.Pipeline
	x        map[string][]float64 // features per split
	y        map[string][]float64
	fp       []byte
	features []string
}

// Run trains a model as the spec says and returns the artifact: the
// fitted pipeline and estimator, the signature, the training statistics,
// the hyperparameters and the metrics on every split. It stops early with
// ctx's error when ctx is cancelled (after handing a last checkpoint to
// cb.OnCheckpoint for the iterative algorithms).
func Run(ctx context.Context, spec Spec, data *dataset.Frame, cb Callbacks) (*artifact.Model, error) {
	return run(ctx, spec, data, cb, nil)
}

// Resume continues a run from a checkpoint produced by the same spec and
// data; it returns the same model, bit for bit, as the uninterrupted run.
func Resume(ctx context.Context, spec Spec, data *dataset.Frame, checkpoint []byte, cb Callbacks) (*artifact.Model, error) {
	ck, err := DecodeCheckpoint(checkpoint)
	if err != nil {
		return nil, err
	}
	return run(ctx, spec, data, cb, ck)
}

func run(ctx context.Context, spec Spec, data *dataset.Frame, cb Callbacks, ck *mlv1.Checkpoint) (*artifact.Model, error) {
	j, err := prepare(spec, data)
	if err != nil {
		return nil, err
	}
	if ck != nil {
		if ck.Algorithm != spec.Algorithm || !slices.Equal(ck.Fingerprint, j.fp) {
			return nil, fmt.Errorf("%w: checkpoint comes from another spec or dataset", ErrCheckpoint)
		}
	}
	var est artifact.Estimator
	switch spec.Algorithm {
	case "linear", "ridge":
		est, err = linear.FitLeastSquares(j.x["train"], len(j.splits["train"]), j.pipe.NumFeatures(), j.y["train"], j.params.float("alpha"), j.pipe.Features)
	case "logistic":
		est, err = linear.FitLogistic(j.x["train"], len(j.splits["train"]), j.pipe.NumFeatures(), ints(j.y["train"]), j.k,
			linear.LogisticOptions{C: j.params.float("C"), MaxIter: j.params.int("max_iter")})
	case "mlp":
		est, err = j.fitMLP(ctx, cb, ck)
	case "gbdt":
		est, err = j.fitGBDT(ctx, cb, ck)
	}
	if err != nil {
		return nil, fmt.Errorf("train %s: %w", spec.Algorithm, err)
	}
	return j.assemble(est, cb)
}

func ints(y []float64) []int {
	out := make([]int, len(y))
	for i, v := range y {
		out[i] = int(v)
	}
	return out
}

func prepare(spec Spec, data *dataset.Frame) (*job, error) {
	params, err := ParseParams(spec.Algorithm, spec.Params)
	if err != nil {
		return nil, err
	}
	if data == nil || data.NumRows() == 0 {
		return nil, fmt.Errorf("%w: no rows", ErrInvalidData)
	}
	j := &job{spec: spec, params: params, fp: fingerprint(spec, data)}
	if j.tgt, err = prepareTarget(spec, data); err != nil {
		return nil, err
	}
	j.features = spec.Features
	if len(j.features) == 0 {
		for _, n := range data.Names() {
			if n != spec.Target {
				j.features = append(j.features, n)
			}
		}
	}
	if slices.Contains(j.features, spec.Target) {
		return nil, fmt.Errorf("%w: the target %q is also a feature", ErrInvalidData, spec.Target)
	}
	if len(j.features) == 0 {
		return nil, fmt.Errorf("%w: no feature columns", ErrInvalidData)
	}
	j.k = 1
	if j.tgt.classify {
		j.k = len(j.tgt.labels)
	}
	if err := j.split(data); err != nil {
		return nil, err
	}
	pspec := preprocess.Spec{
		Features: j.features, Impute: params.str("impute"), ImputeValue: params.float("impute_value"),
		Scale: params.str("scale"), PCAComponents: params.int("pca_components"), PCAVariance: params.float("pca_variance"),
	}
	pipe, x, err := preprocess.Fit(j.frames["train"], pspec)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidData, err)
	}
	j.pipe, j.x = pipe, map[string][]float64{"train": x}
	var ws preprocess.Workspace
	for _, s := range []string{"validation", "test"} {
		f := j.frames[s]
		if f == nil {
			continue
		}
		raw := make([]float64, f.NumRows()*len(pipe.Inputs))
		if err := pipe.EncodeFrame(f, raw, &ws); err != nil {
			return nil, fmt.Errorf("%w: %s rows: %v", ErrInvalidData, s, err)
		}
		xs, err := pipe.Apply(raw, f.NumRows(), &ws, 1)
		if err != nil {
			return nil, fmt.Errorf("%w: %s rows: %v", ErrInvalidData, s, err)
		}
		j.x[s] = slices.Clone(xs)
	}
	return j, nil
}

// split holds out the validation and test rows.
func (j *job) split(data *dataset.Frame) error {
	parts, err := splitRows(j.spec, j.params, j.tgt, data.NumRows())
	if err != nil {
		return err
	}
	j.splits, j.frames, j.y = map[string][]int{}, map[string]*dataset.Frame{}, map[string][]float64{}
	for name, rows := range map[string][]int{"train": parts.Train, "validation": parts.Validation, "test": parts.Test} {
		if len(rows) == 0 {
			continue
		}
		j.splits[name] = rows
		j.frames[name] = data.Take(rows)
		ys := make([]float64, len(rows))
		for r, row := range rows {
			ys[r] = j.tgt.y[row]
		}
		j.y[name] = ys
	}
	if j.tgt.classify {
		seen := map[float64]bool{}
		for _, v := range j.y["train"] {
			seen[v] = true
		}
		if len(seen) < 2 {
			return fmt.Errorf("%w: column %q has a single class (%q) in the training rows; a classifier needs two or more",
				ErrInvalidData, j.spec.Target, j.tgt.labels[int(j.y["train"][0])])
		}
	}
	return nil
}

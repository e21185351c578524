package linear

import (
	"testing"

	"github.com/bmaas/bmaas/pkg/ml/dataset"
	"github.com/bmaas/bmaas/pkg/ml/metrics"
	"github.com/bmaas/bmaas/pkg/ml/preprocess"
	"github.com/stretchr/testify/require"
)

func TestMultinomialIris(t *testing.T) {
	t.Parallel()
	f, err := dataset.ReadFile("../../../examples/datasets/iris.csv", dataset.ReadOptions{})
	require.NoError(t, err)
	y := labels(t, f)
	strata := make([]int32, len(y))
	for i, v := range y {
		strata[i] = int32(v)
	}
	parts, err := dataset.Split(f.NumRows(), []float64{0.8, 0.2}, 42, strata)
	require.NoError(t, err)
	names := f.Names()
	p, x, err := preprocess.Fit(f.Take(parts[0]), preprocess.Spec{Features: names[:4], Scale: "standard"})
	require.NoError(t, err)
	tf := f.Take(parts[1])
	// scikit-learn 1.2.1 on this very split: C=1 gives 0.9, C=10 gives 0.9333.
	for _, tc := range []struct{ c, acc float64 }{{1, 0.9}, {10, 0.9333}} {
		m, err := FitLogistic(x, len(parts[0]), 4, labels(t, f.Take(parts[0])), 3, LogisticOptions{C: tc.c})
		require.NoError(t, err)
		acc := accuracy(t, p, m, tf)
		require.InDelta(t, tc.acc, acc, 1e-3)
	}
}

func accuracy(t *testing.T, p *preprocess.Pipeline, m *Model, tf *dataset.Frame) float64 {
	var ws preprocess.Workspace
	raw := make([]float64, tf.NumRows()*4)
	require.NoError(t, p.EncodeFrame(tf, raw, &ws))
	xt, err := p.Apply(raw, tf.NumRows(), &ws, 1)
	require.NoError(t, err)
	proba := make([]float64, tf.NumRows()*3)
	m.Predict(xt, tf.NumRows(), proba)
	for r := range tf.NumRows() {
		require.InDelta(t, 1, proba[r*3]+proba[r*3+1]+proba[r*3+2], 1e-12)
	}
	return metrics.Accuracy(labels(t, tf), metrics.Argmax(proba, 3))
}

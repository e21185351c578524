package gbdt

import (
	"testing"

	"github.com/bmaas/bmaas/pkg/ml/dataset"
	"github.com/bmaas/bmaas/pkg/ml/metrics"
	"github.com/stretchr/testify/require"
)

type data struct {
	x, y, xt, yt []float64
	n, nt, d     int
}

func load(tb testing.TB, name string, stratify bool) data {
	f, err := dataset.ReadFile("../../../examples/datasets/"+name, dataset.ReadOptions{})
	require.NoError(tb, err)
	d := f.NumCols() - 1
	tc := f.Columns()[d]
	var strata []int32
	if stratify {
		strata = make([]int32, f.NumRows())
		for i, v := range tc.Num {
			strata[i] = int32(v)
		}
	}
	parts, err := dataset.Split(f.NumRows(), []float64{0.8, 0.2}, 1, strata)
	require.NoError(tb, err)
	out := data{d: d, n: len(parts[0]), nt: len(parts[1])}
	take := func(rows []int) (x, y []float64) {
		for _, r := range rows {
			for _, c := range f.Columns()[:d] {
				x = append(x, c.Num[r])
			}
			y = append(y, tc.Num[r])
		}
		return
	}
	out.x, out.y = take(parts[0])
	out.xt, out.yt = take(parts[1])
	return out
}

func cfg() Config {
	return Config{Rounds: 60, LearningRate: 0.1, MaxDepth: 3, MinChildWeight: 1, Lambda: 1, Subsample: 0.8, ColSample: 0.8, MaxBins: 64}
}

func fit(t *testing.T, b *Booster) {
	for !b.Done() {
		b.RunRound()
	}
	b.Finish()
}

func TestBreastCancerAccuracy(t *testing.T) {
	t.Parallel()
	d := load(t, "breast_cancer.csv", true)
	b, err := NewBooster(cfg(), Binary, d.x, d.n, d.d, d.y, 2, 3)
	require.NoError(t, err)
	fit(t, b)
	proba := make([]float64, d.nt*2)
	b.Model.Predict(d.xt, d.nt, proba)
	yt := make([]int, d.nt)
	for i, v := range d.yt {
		yt[i] = int(v)
	}
	require.GreaterOrEqual(t, metrics.Accuracy(yt, metrics.Argmax(proba, 2)), 0.95)
	// Predicting the training rows with raw thresholds matches the
	// binned scores used during training.
	train := make([]float64, d.n*2)
	b.Model.Predict(d.x, d.n, train)
	for i := range d.n {
		require.InDelta(t, sigmoid(b.f[i]), train[i*2+1], 1e-12)
	}
}

func TestMulticlassAndRegression(t *testing.T) {
	t.Parallel()
	d := load(t, "wine.csv", true)
	b, err := NewBooster(cfg(), Multiclass, d.x, d.n, d.d, d.y, 3, 1)
	require.NoError(t, err)
	fit(t, b)
	proba := make([]float64, d.nt*3)
	b.Model.Predict(d.xt, d.nt, proba)
	yt := make([]int, d.nt)
	for i, v := range d.yt {
		yt[i] = int(v)
	}
	require.GreaterOrEqual(t, metrics.Accuracy(yt, metrics.Argmax(proba, 3)), 0.9)

	r := load(t, "diabetes.csv", false)
	c := cfg()
	c.MaxDepth, c.MaxLeaves = 0, 8
	rb, err := NewBooster(c, Regression, r.x, r.n, r.d, r.y, 1, 1)
	require.NoError(t, err)
	fit(t, rb)
	pred := make([]float64, r.nt)
	rb.Model.Predict(r.xt, r.nt, pred)
	require.Greater(t, metrics.R2(r.yt, pred), 0.3)
	for _, tr := range rb.Model.Trees {
		leaves := 0
		for _, l := range tr.Left {
			if l < 0 {
				leaves++
			}
		}
		require.LessOrEqual(t, leaves, 8)
	}
}

func TestResumeBitForBit(t *testing.T) {
	t.Parallel()
	d := load(t, "breast_cancer.csv", true)
	c := cfg()
	c.Patience = 5
	run := func(seed uint64) *Booster {
		b, err := NewBooster(c, Binary, d.x, d.n, d.d, d.y, 2, seed)
		require.NoError(t, err)
		b.SetValidation(d.xt, d.nt, d.yt)
		return b
	}
	full := run(9)
	fit(t, full)
	again := run(9)
	fit(t, again)
	require.Equal(t, full.Model, again.Model)

	a := run(9)
	for range 7 {
		a.RunRound()
	}
	st, err := a.State()
	require.NoError(t, err)
	b := run(12345) // the generator comes from the checkpoint
	require.NoError(t, b.Restore(st))
	fit(t, b)
	require.Equal(t, full.Model, b.Model)
	require.Equal(t, full.Round(), b.Round())
}

package linear

import (
	"encoding/json"
	"math"
	"os"
	"testing"

	"github.com/bmaas/bmaas/pkg/ml/dataset"
	"github.com/bmaas/bmaas/pkg/ml/metrics"
	"github.com/bmaas/bmaas/pkg/ml/preprocess"
	"github.com/stretchr/testify/require"
)

type golden struct {
	Cases map[string]map[string]any `json:"cases"`
}

func loadGolden(t *testing.T) golden {
	raw, err := os.ReadFile("../testdata/sklearn.json")
	require.NoError(t, err)
	var g golden
	require.NoError(t, json.Unmarshal(raw, &g))
	return g
}

// xy returns the features (all but target) and the target of a dataset.
func xy(t *testing.T, name string) (x []float64, y []float64, rows, d int, names []string) {
	f, err := dataset.ReadFile("../../../examples/datasets/"+name, dataset.ReadOptions{})
	require.NoError(t, err)
	rows, d = f.NumRows(), f.NumCols()-1
	x = make([]float64, rows*d)
	for j, c := range f.Columns()[:d] {
		names = append(names, c.Name)
		for r, v := range c.Num {
			x[r*d+j] = v
		}
	}
	return x, f.Columns()[d].Num, rows, d, names
}

func TestGoldenDiabetesOLS(t *testing.T) {
	t.Parallel()
	c := loadGolden(t).Cases["diabetes_linear"]
	x, y, rows, d, names := xy(t, "diabetes.csv")
	const ntrain = 350
	m, err := FitLeastSquares(x[:ntrain*d], ntrain, d, y[:ntrain], 0, names)
	require.NoError(t, err)
	for j, want := range c["coef"].([]any) {
		w := want.(float64)
		require.InEpsilon(t, w, m.Coef[j], 1e-6, "coef %d", j)
	}
	require.InEpsilon(t, c["intercept"].(float64), m.Intercept[0], 1e-6)
	pred := make([]float64, rows-ntrain)
	m.Predict(x[ntrain*d:], rows-ntrain, pred)
	yt := y[ntrain:]
	require.InDelta(t, c["rmse"].(float64), metrics.RMSE(yt, pred), 1e-4)
	require.InDelta(t, c["mae"].(float64), metrics.MAE(yt, pred), 1e-4)
	require.InDelta(t, c["r2"].(float64), metrics.R2(yt, pred), 1e-4)
}

func TestGoldenBreastCancerLogistic(t *testing.T) {
	t.Parallel()
	c := loadGolden(t).Cases["breast_cancer_logistic"]
	f, err := dataset.ReadFile("../../../examples/datasets/breast_cancer.csv", dataset.ReadOptions{})
	require.NoError(t, err)
	train := make([]int, 400)
	for i := range train {
		train[i] = i
	}
	test := dataset.Complement(f.NumRows(), train)
	names := f.Names()
	spec := preprocess.Spec{Features: names[:len(names)-1], Scale: "standard"}
	p, x, err := preprocess.Fit(f.Take(train), spec)
	require.NoError(t, err)
	ytr := labels(t, f.Take(train))
	m, err := FitLogistic(x, len(train), p.NumFeatures(), ytr, 2, LogisticOptions{C: 1})
	require.NoError(t, err)

	tf := f.Take(test)
	raw := make([]float64, len(test)*len(p.Inputs))
	var ws preprocess.Workspace
	require.NoError(t, p.EncodeFrame(tf, raw, &ws))
	xt, err := p.Apply(raw, len(test), &ws, 1)
	require.NoError(t, err)
	proba := make([]float64, len(test)*2)
	m.Predict(xt, len(test), proba)
	got := metrics.Classification(labels(t, tf), proba, 2)
	for _, k := range []string{"accuracy", "precision", "recall", "f1", "roc_auc", "log_loss"} {
		require.InDelta(t, c[k].(float64), got[k], 1e-3, k)
	}
}

func labels(t *testing.T, f *dataset.Frame) []int {
	c, err := f.Col("target")
	require.NoError(t, err)
	y := make([]int, len(c.Num))
	for i, v := range c.Num {
		y[i] = int(v)
	}
	return y
}

func TestOLSSingular(t *testing.T) {
	t.Parallel()
	// Column c = a + b.
	x := []float64{1, 2, 3, 2, 1, 3, 3, 3, 6, 4, 1, 5, 0, 2, 2}
	y := []float64{1, 2, 3, 4, 5}
	_, err := FitLeastSquares(x, 5, 3, y, 0, []string{"a", "b", "c"})
	require.ErrorIs(t, err, ErrSingular)
	require.Contains(t, err.Error(), `column "c"`)
	m, err := FitLeastSquares(x, 5, 3, y, 0.1, nil)
	require.NoError(t, err)
	require.False(t, math.IsNaN(m.Coef[0]))
}

func TestRidgeShrinks(t *testing.T) {
	t.Parallel()
	x, y, _, d, _ := xy(t, "diabetes.csv")
	ols, err := FitLeastSquares(x, 442, d, y, 0, nil)
	require.NoError(t, err)
	ridge, err := FitLeastSquares(x, 442, d, y, 0.5, nil)
	require.NoError(t, err)
	var a, b float64
	for j := range d {
		a += ols.Coef[j] * ols.Coef[j]
		b += ridge.Coef[j] * ridge.Coef[j]
	}
	require.Less(t, b, a)
}

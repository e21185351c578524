package metrics

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"
)

// Expected values computed with scikit-learn 1.2.1.
func TestClassificationMatchesSklearn(t *testing.T) {
	t.Parallel()
	yt := []int{0, 1, 2, 2, 1, 0, 1, 2, 0, 1}
	p := []float64{.7, .2, .1, .2, .5, .3, .1, .3, .6, .3, .4, .3, .1, .8, .1, .4, .4, .2, .5, .3, .2, .2, .2, .6, .6, .1, .3, .1, .1, .8}
	got := Classification(yt, p, 3)
	want := map[string]float64{
		"accuracy":        0.7,
		"precision_macro": 0.6944444444444443, "recall_macro": 0.7222222222222222, "f1_macro": 0.6984126984126985,
		"precision_micro": 0.7, "recall_micro": 0.7, "f1_micro": 0.7,
		"precision_weighted": 0.6916666666666667, "recall_weighted": 0.7, "f1_weighted": 0.6857142857142857,
		"log_loss": 0.8432263980630932,
		"roc_auc":  0.8095238095238094,
	}
	for k, v := range want {
		require.InDelta(t, v, got[k], 1e-12, k)
	}
	cm := ConfusionMatrix(yt, Argmax(p, 3), 3)
	require.Equal(t, [][]int64{{3, 0, 0}, {1, 2, 1}, {0, 1, 2}}, cm)
}

func TestBinaryRanking(t *testing.T) {
	t.Parallel()
	yb := []int{0, 1, 1, 0, 1, 1, 0, 0, 1, 1}
	s := []float64{.1, .9, .8, .4, .4, .7, .2, .6, .3, .95}
	require.InDelta(t, 0.8541666666666666, ROCAUC(yb, s), 1e-12)
	require.InDelta(t, 0.9107142857142857, AveragePrecision(yb, s), 1e-12)
	require.True(t, math.IsNaN(ROCAUC([]int{1, 1}, []float64{.2, .3})))
	proba := make([]float64, 2*len(s))
	for i, v := range s {
		proba[2*i], proba[2*i+1] = 1-v, v
	}
	got := Classification(yb, proba, 2)
	require.InDelta(t, 0.8541666666666666, got["roc_auc"], 1e-12)
	require.InDelta(t, 0.9107142857142857, got["pr_auc"], 1e-12)
	prf := PrecisionRecallF1(yb, Argmax(proba, 2), 2, Binary, 1)
	require.InDelta(t, 0.8, prf.Precision, 1e-12) // predicted 1 at .9 .8 .7 .6 .95: 4 of 5
}

func TestRegressionMatchesSklearn(t *testing.T) {
	t.Parallel()
	y := []float64{3, -0.5, 2, 7, 4.2}
	p := []float64{2.5, 0.0, 2, 8, 4}
	got := Regression(y, p)
	want := map[string]float64{"rmse": 0.5549774770204643, "mae": 0.44000000000000006, "r2": 0.9496600418410042,
		"mape": 0.27142857142857146, "explained_variance": 0.9538441422594142}
	for k, v := range want {
		require.InDelta(t, v, got[k], 1e-12, k)
	}
}

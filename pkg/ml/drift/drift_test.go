package drift

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	commonv1 "github.com/bmaas/bmaas/api/bmaas/common/v1"
)

// statsOf builds training statistics of xs with a 10-bin histogram.
func statsOf(xs []float64) *commonv1.ColumnStats {
	lo, hi := xs[0], xs[0]
	var sum, sq float64
	for _, x := range xs {
		lo, hi = math.Min(lo, x), math.Max(hi, x)
		sum += x
	}
	mean := sum / float64(len(xs))
	for _, x := range xs {
		sq += (x - mean) * (x - mean)
	}
	h := &commonv1.Histogram{}
	for i := range 11 {
		h.Edges = append(h.Edges, lo+(hi-lo)*float64(i)/10)
	}
	h.Counts = make([]int64, 10)
	for _, x := range xs {
		i := min(int((x-lo)/(hi-lo)*10), 9)
		h.Counts[i]++
	}
	return &commonv1.ColumnStats{Count: int64(len(xs)), Mean: mean, Std: math.Sqrt(sq / float64(len(xs)-1)), Min: lo, Max: hi, Histogram: h}
}

func normals(r *rand.Rand, n int, mu float64) []float64 {
	xs := make([]float64, n)
	for i := range xs {
		xs[i] = mu + r.NormFloat64()
	}
	return xs
}

func TestNumericPicksTheTestBySizeAndSeesAShift(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, tc := range []struct {
		name string
		n    int
		test string
	}{{"small reference", 500, TestKS}, {"large reference", 5000, TestWasserstein}} {
		t.Run(tc.name, func(t *testing.T) {
			ref := statsOf(normals(r, tc.n, 0))
			same := Numeric(ref, normals(r, 300, 0))
			require.Equal(t, tc.test, same.Test)
			require.False(t, same.Drifted, "same distribution: %+v", same)
			shifted := Numeric(ref, normals(r, 300, 1.5))
			require.True(t, shifted.Drifted, "shifted by 1.5 std: %+v", shifted)
			require.Greater(t, shifted.Score, same.Score)
			require.Greater(t, shifted.PSI, PSIDrifted)
			require.InDelta(t, 1.5, shifted.Mean, 0.3)
		})
	}
}

// The Wasserstein distance of a shift by c is c (normed: c/std), and the
// KS statistic of a sample against its own histogram is small.
func TestStatisticsAgainstKnownValues(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	xs := normals(r, 20000, 0)
	ref := statsOf(xs)
	shifted := make([]float64, 4000)
	for i := range shifted {
		shifted[i] = xs[i] + 0.5
	}
	res := Numeric(ref, shifted)
	require.InDelta(t, 0.5/ref.Std, res.Score, 0.05)
	p, q := BinShares(ref.Histogram, xs[:2000])
	require.Less(t, MaxGap(p, q), 0.05)
	// Rounded values (ties) against the histogram of the same rounded
	// values: no drift.
	rounded := make([]float64, len(xs[:800]))
	for i, x := range xs[:800] {
		rounded[i] = math.Round(x*2) / 2
	}
	tied := Numeric(statsOf(rounded[:400]), rounded[400:])
	require.Equal(t, TestKS, tied.Test)
	require.False(t, tied.Drifted, "%+v", tied)
	require.InDelta(t, 1, ksPValue(0.01, 1000, 1000), 1e-9)
	require.Less(t, ksPValue(0.2, 1000, 1000), 1e-6)
	// scipy.stats.kstwo asymptotics: D=0.0607 with n=m=1000 is p≈0.05.
	require.InDelta(t, 0.05, ksPValue(0.0607, 1000, 1000), 0.01)
}

func TestCategorical(t *testing.T) {
	ref := &commonv1.ColumnStats{Count: 300, TopCategories: []*commonv1.CategoryCount{{Value: "a", Count: 100}, {Value: "b", Count: 100}, {Value: "c", Count: 100}}}
	var same, shifted []string
	for i := range 300 {
		same = append(same, []string{"a", "b", "c"}[i%3])
		shifted = append(shifted, []string{"a", "a", "d"}[i%3])
	}
	s := Categorical(ref, same)
	require.Equal(t, TestChiSquare, s.Test)
	require.False(t, s.Drifted)
	require.Greater(t, s.PValue, 0.99)
	d := Categorical(ref, shifted)
	require.True(t, d.Drifted, "%+v", d)
	// One value the training data lacked is no drift by itself.
	one := append([]string{"new"}, same[1:]...)
	require.False(t, Categorical(ref, one).Drifted, "%+v", Categorical(ref, one))
	ref.Count = 3000
	for _, c := range ref.TopCategories {
		c.Count = 1000
	}
	require.Equal(t, TestJensenShannon, Categorical(ref, same).Test)
	require.False(t, Categorical(ref, same).Drifted)
	require.True(t, Categorical(ref, shifted).Drifted)
}

func TestMissingAndEmpty(t *testing.T) {
	ref := statsOf([]float64{1, 2, 3, 4})
	res := Numeric(ref, []float64{math.NaN(), math.NaN()})
	require.Zero(t, res.Count)
	require.False(t, res.Drifted)
	require.Zero(t, Categorical(&commonv1.ColumnStats{}, []string{"x"}).Score)
}

func BenchmarkNumeric(b *testing.B) {
	r := rand.New(rand.NewPCG(5, 6))
	ref := statsOf(normals(r, 500, 0))
	xs := normals(r, 10000, 0.2)
	b.ReportAllocs()
	for b.Loop() {
		Numeric(ref, xs)
	}
	b.ReportMetric(float64(len(xs))*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}

func TestPSIAndMaxGap(t *testing.T) {
	same := []float64{0.25, 0.25, 0.25, 0.25}
	require.InDelta(t, 0, PSI(same, same), 1e-12)
	require.InDelta(t, 0, MaxGap(same, same), 1e-12)
	shifted := []float64{0, 0, 0.5, 0.5}
	require.Greater(t, PSI(same, shifted), PSIDrifted)
	require.InDelta(t, 0.5, MaxGap(same, shifted), 1e-12)
}

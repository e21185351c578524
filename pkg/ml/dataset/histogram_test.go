package dataset

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// checkHistogram verifies that the histogram counts every finite value in
// its bin and that the bins have a fixed width.
func checkHistogram(t *testing.T, xs []float64, edges []float64, counts []int64) {
	t.Helper()
	require.Len(t, edges, len(counts)+1)
	want := make([]int64, len(counts))
	for _, x := range xs {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			continue
		}
		require.GreaterOrEqual(t, x, edges[0])
		require.LessOrEqual(t, x, edges[len(edges)-1])
		k := len(counts) - 1
		for j := range counts {
			if x < edges[j+1] {
				k = j
				break
			}
		}
		want[k]++
	}
	require.Equal(t, want, counts)
	if len(counts) > 1 {
		w := edges[1] - edges[0]
		for j := 1; j < len(counts); j++ {
			require.Equal(t, w, edges[j+1]-edges[j])
		}
	}
}

func TestStreamHistogram(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	gens := map[string]func() float64{
		"normal":    func() float64 { return rng.NormFloat64()*3 + 100 },
		"wide":      func() float64 { return rng.NormFloat64() * 1e12 },
		"tiny":      func() float64 { return rng.Float64() * 1e-9 },
		"ints":      func() float64 { return float64(rng.IntN(5)) },
		"expanding": nil,
	}
	for name, gen := range gens {
		for _, bins := range []int{2, 7, 32} {
			h := newStreamHist(bins)
			xs := make([]float64, 3000)
			for i := range xs {
				if gen == nil {
					xs[i] = float64(i*i) * math.Pow(-1, float64(i))
				} else {
					xs[i] = gen()
				}
				h.add(xs[i])
			}
			edges, counts := h.result()
			require.LessOrEqual(t, len(counts), bins, name)
			checkHistogram(t, xs, edges, counts)
		}
	}
	h := newStreamHist(8)
	for range 5 {
		h.add(2.5)
	}
	edges, counts := h.result()
	require.Equal(t, []float64{2.5, 2.5}, edges)
	require.Equal(t, []int64{5}, counts)
	h = newStreamHist(8)
	h.add(-math.MaxFloat64)
	h.add(math.MaxFloat64)
	h.add(0)
	_, counts = h.result()
	require.EqualValues(t, 3, sum(counts))
}

func sum(xs []int64) int64 {
	var s int64
	for _, x := range xs {
		s += x
	}
	return s
}

package mlp

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

func naive(m, n, k int, at func(i, p int) float32, bt func(p, j int) float32) []float32 {
	c := make([]float32, m*n)
	for i := range m {
		for j := range n {
			var s float32
			for p := range k {
				s += at(i, p) * bt(p, j)
			}
			c[i*n+j] = s
		}
	}
	return c
}

func randVec(r *rand.Rand, n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = r.Float32()*2 - 1
	}
	return v
}

func TestKernels(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(1, 1))
	for _, sz := range [][3]int{{1, 1, 1}, {7, 5, 3}, {9, 64, 30}, {256, 1, 64}, {4, 8, 4}} {
		m, n, k := sz[0], sz[1], sz[2]
		a, b := randVec(r, m*k), randVec(r, k*n)
		c := make([]float32, m*n)
		gemmNN(m, n, k, a, b, c)
		require.InDeltaSlice(t, naive(m, n, k, func(i, p int) float32 { return a[i*k+p] }, func(p, j int) float32 { return b[p*n+j] }), c, 1e-4)

		// gemmTN: c (k×n) += aᵀ (a is m×k) · g (m×n)
		g := randVec(r, m*n)
		w := make([]float32, k*n)
		gemmTN(m, n, k, a, g, w)
		require.InDeltaSlice(t, naive(k, n, m, func(i, p int) float32 { return a[p*k+i] }, func(p, j int) float32 { return g[p*n+j] }), w, 1e-4)

		// gemmNT: c (m×k) = g (m×n) · bᵀ (b is k×n)
		dx := make([]float32, m*k)
		gemmNT(m, n, k, g, b, dx)
		require.InDeltaSlice(t, naive(m, k, n, func(i, p int) float32 { return g[i*n+p] }, func(p, j int) float32 { return b[j*n+p] }), dx, 1e-4)
	}
}

// TestGemmRowsExact: a row's result does not depend on the rows computed
// with it (the blocked path sums in the one-row path's order), so batched
// and one-row predictions are identical.
func TestGemmRowsExact(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(2, 2))
	for _, sz := range [][3]int{{4, 8, 1}, {5, 37, 9}, {9, 64, 30}, {32, 1024, 64}, {13, 24, 7}} {
		m, n, k := sz[0], sz[1], sz[2]
		a, b := randVec(r, m*k), randVec(r, k*n)
		c := make([]float32, m*n)
		gemmNN(m, n, k, a, b, c)
		one := make([]float32, n)
		for i := range m {
			gemmNN(1, n, k, a[i*k:(i+1)*k], b, one)
			require.Equal(t, one, c[i*n:(i+1)*n], "m=%d n=%d k=%d row %d", m, n, k, i)
		}
	}
}

func TestPredictBatchedExact(t *testing.T) {
	t.Parallel()
	n, err := NewNet([]int{20, 48, 40, 3}, ReLU, Softmax)
	require.NoError(t, err)
	r := rand.New(rand.NewPCG(3, 3))
	copy(n.Params, randVec(r, len(n.Params)))
	const rows = 11
	x := make([]float64, rows*20)
	for i := range x {
		x[i] = r.Float64()*2 - 1
	}
	out := make([]float64, rows*3)
	n.Predict(x, rows, out)
	one := make([]float64, 3)
	for i := range rows {
		n.Predict(x[i*20:(i+1)*20], 1, one)
		require.Equal(t, one, out[i*3:(i+1)*3])
	}
}

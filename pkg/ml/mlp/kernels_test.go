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

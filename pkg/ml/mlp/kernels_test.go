package mlp

import (
	"math/rand/v2"
	"slices"
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
// with it (the blocked paths sum in the one-row path's order), so batched
// and one-row predictions are identical. Every path of gemm4 (packed and
// in place, k split into blocks, blocks narrower than b, panels of 24, 16
// and 8 columns, scalar tail columns, 1-3 leftover rows) is run.
func TestGemmRowsExact(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(2, 2))
	sizes := [][3]int{{4, 8, 1}, {5, 37, 9}, {9, 64, 30}, {32, 1024, 64}, {13, 24, 7}}
	for _, m := range []int{4, 5, 6, 7, 8, 13, 16, 32} {
		for _, n := range []int{8, 10, 16, 23, 24, 40, 47, 48, 56, 100, 1030} {
			for _, k := range []int{1, 2, 3, 8, 65, 300} {
				sizes = append(sizes, [3]int{m, n, k})
			}
		}
	}
	// Wider than one packing block (whole rows do not fit), k split.
	sizes = append(sizes, [3]int{5, 8200, 3}, [3]int{7, 9000, 20}, [3]int{6, 4100, 600})
	for _, mode := range []int{gemmAuto, gemmPackOnly, gemmDirectOnly} {
		for _, sz := range sizes {
			m, n, k := sz[0], sz[1], sz[2]
			a, b := randVec(r, m*k), randVec(r, k*n)
			c := make([]float32, m*n)
			gemmNNMode(mode, m, n, k, a, b, c)
			one := make([]float32, n)
			for i := range m {
				gemmNN(1, n, k, a[i*k:(i+1)*k], b, one)
				if !slices.Equal(one, c[i*n:(i+1)*n]) {
					t.Fatalf("mode %d m=%d n=%d k=%d: row %d differs from the one-row path", mode, m, n, k, i)
				}
			}
		}
	}
}

func TestPredictBatchedExact(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(3, 3))
	for _, sizes := range [][]int{{20, 48, 40, 3}, {20, 300, 37, 3}, {7, 1030, 2}} {
		n, err := NewNet(sizes, ReLU, Softmax)
		require.NoError(t, err)
		copy(n.Params, randVec(r, len(n.Params)))
		in, no := sizes[0], n.NumOutputs()
		for _, rows := range []int{2, 4, 5, 7, 11, 13, 16, 32} {
			x := make([]float64, rows*in)
			for i := range x {
				x[i] = r.Float64()*2 - 1
			}
			out := make([]float64, rows*no)
			n.Predict(x, rows, out)
			one := make([]float64, no)
			for i := range rows {
				n.Predict(x[i*in:(i+1)*in], 1, one)
				require.Equal(t, one, out[i*no:(i+1)*no], "sizes %v rows %d row %d", sizes, rows, i)
			}
		}
	}
}

//go:build !amd64

package mlp

const useSIMD = false

func axpy(a float32, x, y []float32) {
	y = y[:len(x)]
	for i, v := range x {
		y[i] += a * v
	}
}

func dot(x, y []float32) float32 {
	var s float32
	y = y[:len(x)]
	for i, v := range x {
		s += v * y[i]
	}
	return s
}

func gemm4(mode, m, n, k int, a, b, c []float32) int { return 0 }

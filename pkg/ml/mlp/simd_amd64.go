package mlp

import "golang.org/x/sys/cpu"

// useSIMD selects the AVX2+FMA kernels. Results are deterministic on a
// given machine; they differ in the last bits from the portable kernels.
var useSIMD = cpu.X86.HasAVX2 && cpu.X86.HasFMA

//go:noescape
func axpyAVX(a float32, x, y []float32)

//go:noescape
func dotAVX(x, y []float32) float32

// axpy sets y += a*x (len(y) >= len(x)).
func axpy(a float32, x, y []float32) {
	n := len(x)
	axpyAVX(a, x, y)
	y = y[:n]
	for i := n &^ 7; i < n; i++ {
		y[i] += a * x[i]
	}
}

// dot returns x·y (len(y) >= len(x)).
func dot(x, y []float32) float32 {
	n := len(x)
	s := dotAVX(x, y)
	y = y[:n]
	for i := n &^ 7; i < n; i++ {
		s += x[i] * y[i]
	}
	return s
}

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

// kern4x16 sets the 4×16 block at c (row stride ldc) to the product of
// the 4×k rows at a (row stride lda) and the k×16 panel at b (row stride
// ldb), accumulating over p in order as axpy does.
//
//go:noescape
func kern4x16(k int, a *float32, lda int, b *float32, ldb int, c *float32, ldc int)

// kern4x8 is kern4x16 for an 8-column panel.
//
//go:noescape
func kern4x8(k int, a *float32, lda int, b *float32, ldb int, c *float32, ldc int)

// gemm4 sets rows i..i+3 of c (m×n) = a (m×k) · b (k×n) in 4×16 register
// blocks, panel by panel so a panel of b serves every row block from
// cache, with the same summation order per element as one axpy per p.
func gemm4(m, n, k int, a, b, c []float32) int {
	if m < 4 || k == 0 {
		return 0
	}
	_, _, _ = a[m*k-1], b[k*n-1], c[m*n-1]
	rows := m &^ 3
	n16, n8 := n&^15, n&^7
	for j := 0; j < n16; j += 16 {
		for i := 0; i < rows; i += 4 {
			kern4x16(k, &a[i*k], k, &b[j], n, &c[i*n+j], n)
		}
	}
	if n16 < n8 {
		for i := 0; i < rows; i += 4 {
			kern4x8(k, &a[i*k], k, &b[n16], n, &c[i*n+n16], n)
		}
	}
	for i := range rows {
		ar, cr := a[i*k:(i+1)*k], c[i*n:(i+1)*n]
		for j := n8; j < n; j++ {
			var s float32
			for p, x := range ar {
				s += x * b[p*n+j]
			}
			cr[j] = s
		}
	}
	return rows
}

package mlp

// Dense float32 kernels on row-major matrices, written for the compiler's
// bounds-check elimination: rows are sliced to exact lengths before the
// inner loops, and four rows are processed at once so each loaded value of
// the shared operand feeds four multiply-adds.

// gemmNN sets c (m×n) = a (m×k) · b (k×n).
func gemmNN(m, n, k int, a, b, c []float32) { gemmNNMode(gemmAuto, m, n, k, a, b, c) }

// Paths of the blocked product (gemm4): chosen by size, or forced (tests).
const (
	gemmAuto = iota
	gemmPackOnly
	gemmDirectOnly
)

// gemmNNMode is gemmNN with the blocked product's path forced by mode.
func gemmNNMode(mode, m, n, k int, a, b, c []float32) {
	if useSIMD && n >= 8 {
		for i := gemm4(mode, m, n, k, a, b, c); i < m; i++ {
			cr := c[i*n : (i+1)*n]
			clear(cr)
			for p, x := range a[i*k : (i+1)*k] {
				axpy(x, b[p*n:(p+1)*n], cr)
			}
		}
		return
	}
	i := 0
	for ; i+4 <= m; i += 4 {
		c0, c1, c2, c3 := c[i*n:(i+1)*n], c[(i+1)*n:(i+2)*n], c[(i+2)*n:(i+3)*n], c[(i+3)*n:(i+4)*n]
		clear(c0)
		clear(c1)
		clear(c2)
		clear(c3)
		a0, a1, a2, a3 := a[i*k:(i+1)*k], a[(i+1)*k:(i+2)*k], a[(i+2)*k:(i+3)*k], a[(i+3)*k:(i+4)*k]
		for p := range k {
			br := b[p*n : (p+1)*n]
			x0, x1, x2, x3 := a0[p], a1[p], a2[p], a3[p]
			c0, c1, c2, c3 := c0[:len(br)], c1[:len(br)], c2[:len(br)], c3[:len(br)]
			for j, bv := range br {
				c0[j] += x0 * bv
				c1[j] += x1 * bv
				c2[j] += x2 * bv
				c3[j] += x3 * bv
			}
		}
	}
	for ; i < m; i++ {
		cr := c[i*n : (i+1)*n]
		clear(cr)
		ar := a[i*k : (i+1)*k]
		for p, x := range ar {
			br := b[p*n : (p+1)*n]
			cr := cr[:len(br)]
			for j, bv := range br {
				cr[j] += x * bv
			}
		}
	}
}

// gemmTN adds aᵀ·b to c: c (k×n) += aᵀ with a (m×k), b (m×n). It is the
// weight gradient: a = layer input, b = output gradient.
func gemmTN(m, n, k int, a, b, c []float32) {
	if useSIMD && n >= 8 {
		for r := range m {
			br := b[r*n : (r+1)*n]
			for p, x := range a[r*k : (r+1)*k] {
				axpy(x, br, c[p*n:(p+1)*n])
			}
		}
		return
	}
	r := 0
	for ; r+4 <= m; r += 4 {
		a0, a1, a2, a3 := a[r*k:(r+1)*k], a[(r+1)*k:(r+2)*k], a[(r+2)*k:(r+3)*k], a[(r+3)*k:(r+4)*k]
		b0, b1, b2, b3 := b[r*n:(r+1)*n], b[(r+1)*n:(r+2)*n], b[(r+2)*n:(r+3)*n], b[(r+3)*n:(r+4)*n]
		for p := range k {
			cr := c[p*n : (p+1)*n]
			x0, x1, x2, x3 := a0[p], a1[p], a2[p], a3[p]
			b0, b1, b2, b3 := b0[:len(cr)], b1[:len(cr)], b2[:len(cr)], b3[:len(cr)]
			for j := range cr {
				cr[j] += x0*b0[j] + x1*b1[j] + x2*b2[j] + x3*b3[j]
			}
		}
	}
	for ; r < m; r++ {
		ar, br := a[r*k:(r+1)*k], b[r*n:(r+1)*n]
		for p, x := range ar {
			cr := c[p*n : (p+1)*n]
			cr = cr[:len(br)]
			for j, bv := range br {
				cr[j] += x * bv
			}
		}
	}
}

// gemmNT sets c (m×k) = a (m×n) · bᵀ with b (k×n): the input gradient,
// a = output gradient, b = weights stored k×n (in×out).
func gemmNT(m, n, k int, a, b, c []float32) {
	if useSIMD && n >= 8 {
		for i := range m {
			ar := a[i*n : (i+1)*n]
			cr := c[i*k : (i+1)*k]
			for p := range cr {
				cr[p] = dot(ar, b[p*n:(p+1)*n])
			}
		}
		return
	}
	for i := range m {
		ar := a[i*n : (i+1)*n]
		cr := c[i*k : (i+1)*k]
		p := 0
		for ; p+4 <= k; p += 4 {
			b0, b1, b2, b3 := b[p*n:(p+1)*n], b[(p+1)*n:(p+2)*n], b[(p+2)*n:(p+3)*n], b[(p+3)*n:(p+4)*n]
			b0, b1, b2, b3 = b0[:len(ar)], b1[:len(ar)], b2[:len(ar)], b3[:len(ar)]
			var s0, s1, s2, s3 float32
			for j, av := range ar {
				s0 += av * b0[j]
				s1 += av * b1[j]
				s2 += av * b2[j]
				s3 += av * b3[j]
			}
			cr[p], cr[p+1], cr[p+2], cr[p+3] = s0, s1, s2, s3
		}
		for ; p < k; p++ {
			br := b[p*n : (p+1)*n]
			br = br[:len(ar)]
			var s float32
			for j, av := range ar {
				s += av * br[j]
			}
			cr[p] = s
		}
	}
}

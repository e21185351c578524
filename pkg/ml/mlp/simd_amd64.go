package mlp

import (
	"sync"

	"golang.org/x/sys/cpu"
)

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

// kernP4x24 sets (acc false) or continues (acc true) the rows×24 block
// at c (row stride ldc, rows 1-4) with the product of the rows×k block at
// a (row stride lda) and the k×24 panel at b (row stride ldb; 24 when
// packed): c[r][j] = fma(a[r][p], b[p][j], c[r][j]) for p in order,
// the rounding of one axpy per p. Rows past rows repeat the last one (the
// same values are stored twice). While it runs it prefetches npf cache
// lines from pf on (at most one per two steps of p).
//
//go:noescape
func kernP4x24(k, rows int, a *float32, lda int, b *float32, ldb int, c *float32, ldc int, acc bool, pf *float32, npf int)

// kernP4x16 is kernP4x24 for a 16-column panel.
//
//go:noescape
func kernP4x16(k, rows int, a *float32, lda int, b *float32, ldb int, c *float32, ldc int, acc bool, pf *float32, npf int)

// kernP4x8 is kernP4x24 for an 8-column panel.
//
//go:noescape
func kernP4x8(k, rows int, a *float32, lda int, b *float32, ldb int, c *float32, ldc int, acc bool, pf *float32, npf int)

// packPanels copies np panels of 24 columns of the kb rows at src (row
// stride lds) to dst, panel q's row p at dst[(q*kb+p)*24], then the next
// tail (0, 8 or 16) columns as one more panel at dst[np*kb*24:], its row
// p at dst[np*kb*24+p*tail].
//
//go:noescape
func packPanels(kb, np, tail int, src *float32, lds int, dst *float32)

// packFloats is the size of gemm4's packing buffer (512 KiB, half the L2 of the
// cores it was tuned on), one per concurrent call, pooled.
const packFloats = 1 << 17

var packPool = sync.Pool{New: func() any { b := make([]float32, packFloats); return &b }}

// gemm4 sets c (m×n) = a (m×k) · b (k×n) for m >= 4 and returns the number
// of rows it computed (0 or m). mode forces a path (gemmPackOnly,
// gemmDirectOnly) or lets the sizes choose (gemmAuto).
//
// b is copied block by block (kc rows × nc columns, whole rows when they
// fit) into panels of 24 columns, each stored contiguously, so the
// micro-kernel streams a panel linearly from L1 for every block of 4
// rows; while the kernels run on one block they prefetch the next one, so
// reading b from memory overlaps the arithmetic. Each element is summed
// over p in order from zero, one FMA per p, exactly as one axpy per p
// does; between k blocks the partial sums are stored to c and reloaded as
// float32, which does not change them.
func gemm4(mode, m, n, k int, a, b, c []float32) int {
	if m < 4 || k == 0 {
		return 0
	}
	_, _, _ = a[m*k-1], b[k*n-1], c[m*n-1]
	n8 := n &^ 7
	kc, nc := min(k, 256), n8
	if n8*16 <= packFloats {
		kc = min(kc, packFloats/n8)
	} else {
		kc, nc = min(k, 64), packFloats/64/24*24
	}
	// A b that stays in cache (this layer's weights take at most 16 MiB)
	// serves fewer than 12 rows faster in place than packed.
	if mode == gemmDirectOnly || mode == gemmAuto && m < 12 && k*n <= 1<<22 {
		gemmDirect(m, n, k, n8, a, b, c)
		if n8 < n {
			gemmTail(m, n, k, n8, a, b, c)
		}
		return m
	}
	whole := nc == n8 // blocks are whole rows of b: the next one is contiguous
	bp := packPool.Get().(*[]float32)
	buf := *bp
	rowBlocks := (m + 3) / 4
	for jc := 0; jc < n8; jc += nc {
		nb := min(nc, n8-jc)
		np, tail := nb/24, nb%24
		panels := np
		if tail > 0 {
			panels++
		}
		for pc := 0; pc < k; pc += kc {
			kb := min(kc, k-pc)
			packPanels(kb, np, tail, &b[pc*n+jc], n, &buf[0])
			// The next block, rows pc+kb.. of the same columns, is
			// prefetched in equal shares by the kernel calls on this one.
			pfLeft, pfPer, pfAt := 0, 0, 0
			if next := pc + kb; whole && next < k {
				pfAt = next * n
				pfLeft = min(kc, k-next) * n / 16
				calls := panels * rowBlocks
				pfPer = (pfLeft + calls - 1) / calls
			}
			acc := pc > 0
			for q := 0; q < nb; q += 24 {
				w := min(24, nb-q)
				pb := &buf[kb*q]
				for i := 0; i < m; i += 4 {
					npf := min(pfPer, pfLeft)
					pf := &b[min(pfAt, len(b)-1)]
					pfAt += npf * 16
					pfLeft -= npf
					ai, ci := &a[i*k+pc], &c[i*n+jc+q]
					r := min(4, m-i)
					switch w {
					case 24:
						kernP4x24(kb, r, ai, k, pb, w, ci, n, acc, pf, npf)
					case 16:
						kernP4x16(kb, r, ai, k, pb, w, ci, n, acc, pf, npf)
					default:
						kernP4x8(kb, r, ai, k, pb, w, ci, n, acc, pf, npf)
					}
				}
			}
		}
	}
	packPool.Put(bp)
	if n8 < n {
		gemmTail(m, n, k, n8, a, b, c)
	}
	return m
}

// gemmDirect is gemm4 on b in place (row stride n), k in blocks of 256 so
// a panel's rows stay in L1 across the row blocks.
func gemmDirect(m, n, k, n8 int, a, b, c []float32) {
	const kc = 256
	for q := 0; q < n8; q += 24 {
		w := min(24, n8-q)
		for pc := 0; pc < k; pc += kc {
			kb := min(kc, k-pc)
			pb := &b[pc*n+q]
			for i := 0; i < m; i += 4 {
				ai, ci := &a[i*k+pc], &c[i*n+q]
				r := min(4, m-i)
				switch w {
				case 24:
					kernP4x24(kb, r, ai, k, pb, n, ci, n, pc > 0, pb, 0)
				case 16:
					kernP4x16(kb, r, ai, k, pb, n, ci, n, pc > 0, pb, 0)
				default:
					kernP4x8(kb, r, ai, k, pb, n, ci, n, pc > 0, pb, 0)
				}
			}
		}
	}
}

// gemmTail sets columns n8..n-1 of c with the scalar loop of axpy's tail,
// four rows at a time so the four sums advance side by side.
func gemmTail(m, n, k, n8 int, a, b, c []float32) {
	i := 0
	for ; i+4 <= m; i += 4 {
		a0, a1, a2, a3 := a[i*k:(i+1)*k], a[(i+1)*k:(i+2)*k], a[(i+2)*k:(i+3)*k], a[(i+3)*k:(i+4)*k]
		for j := n8; j < n; j++ {
			var s0, s1, s2, s3 float32
			for p, x := range a0 {
				bv := b[p*n+j]
				s0 += x * bv
				s1 += a1[p] * bv
				s2 += a2[p] * bv
				s3 += a3[p] * bv
			}
			c[i*n+j], c[(i+1)*n+j], c[(i+2)*n+j], c[(i+3)*n+j] = s0, s1, s2, s3
		}
	}
	for ; i < m; i++ {
		ar, cr := a[i*k:(i+1)*k], c[i*n:(i+1)*n]
		for j := n8; j < n; j++ {
			var s float32
			for p, x := range ar {
				s += x * b[p*n+j]
			}
			cr[j] = s
		}
	}
}

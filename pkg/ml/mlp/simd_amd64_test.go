package mlp

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

func BenchmarkGemmNN(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	for _, sz := range [][3]int{{8, 1024, 1024}, {16, 1024, 1024}, {32, 1024, 1024}, {8, 4096, 4096}, {16, 4096, 4096}, {32, 4096, 4096}} {
		m, n, k := sz[0], sz[1], sz[2]
		a, w, c := randVec(r, m*k), randVec(r, k*n), make([]float32, m*n)
		for _, mode := range []string{"pack", "direct"} {
			md := map[string]int{"pack": gemmPackOnly, "direct": gemmDirectOnly}[mode]
			b.Run(fmt.Sprintf("m=%d/n=%d/k=%d/%s", m, n, k, mode), func(b *testing.B) {
				for b.Loop() {
					gemmNNMode(md, m, n, k, a, w, c)
				}
				b.ReportMetric(2*float64(m*n*k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		}
	}
}

func BenchmarkKernel(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	const k = 256
	a, p, c := randVec(r, 4*k), randVec(r, k*24), make([]float32, 4*24)
	for b.Loop() {
		kernP4x24(k, 4, &a[0], k, &p[0], 24, &c[0], 24, false, &a[0], 0)
	}
	b.ReportMetric(2*4*24*k*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
}

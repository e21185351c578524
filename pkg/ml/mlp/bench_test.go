package mlp

import (
	"fmt"
	"testing"
)

// BenchmarkTrainBreastCancer trains the 30-64-64-1 network of the PyTorch
// comparison (bench/ml/mlp_torch.py): Adam, batch 256, one epoch per op.
func BenchmarkTrainBreastCancer(b *testing.B) {
	d := load(b, "breast_cancer.csv")
	x := append(append([]float32{}, d.x...), d.xt...)
	y := append(append([]float32{}, d.y...), d.yt...)
	n := d.n + d.nt
	cfg := adam(1 << 30)
	cfg.BatchSize = 256
	tr, err := NewTrainer(cfg, d.d, 1, SigmoidOutput, 1)
	if err != nil {
		b.Fatal(err)
	}
	tr.SetData(x, y, n)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, _, err := tr.RunEpoch(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "samples/s")
}

func BenchmarkPredict(b *testing.B) {
	d := load(b, "breast_cancer.csv")
	tr, _ := NewTrainer(adam(1), d.d, 1, SigmoidOutput, 1)
	for _, rows := range []int{1, 64} {
		x := make([]float64, rows*d.d)
		for i := range x {
			x[i] = float64(d.x[i%len(d.x)])
		}
		out := make([]float64, rows*2)
		b.Run(map[int]string{1: "rows=1", 64: "rows=64"}[rows], func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				tr.Net.Predict(x, rows, out)
			}
		})
	}
}

// BenchmarkPredictWide: a 64-1024-1024-10 net (about 1.1 M parameters,
// 4.5 MB of float32 weights, held in L3) and a 64-4096-4096-10 net
// (about 17 M parameters, 68 MB, streamed from memory on every call).
// One row streams all weights; a batch reads them once per call. ns/row
// is the figure to compare; GFLOP/s counts 2·in·out per row and layer.
func BenchmarkPredictWide(b *testing.B) {
	for _, w := range []int{1024, 4096} {
		sizes := []int{64, w, w, 10}
		n, err := NewNet(sizes, ReLU, Softmax)
		if err != nil {
			b.Fatal(err)
		}
		for i := range n.Params {
			n.Params[i] = float32(i%13-6) * 0.01
		}
		flops := 0.0
		for l := 0; l+1 < len(sizes); l++ {
			flops += 2 * float64(sizes[l]) * float64(sizes[l+1])
		}
		for _, rows := range []int{1, 8, 16, 32} {
			x := make([]float64, rows*64)
			for i := range x {
				x[i] = float64(i%7) * 0.5
			}
			out := make([]float64, rows*10)
			b.Run(fmt.Sprintf("width=%d/rows=%d", w, rows), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					n.Predict(x, rows, out)
				}
				sec := b.Elapsed().Seconds()
				b.ReportMetric(sec*1e9/float64(b.N*rows), "ns/row")
				b.ReportMetric(flops*float64(b.N*rows)/sec/1e9, "GFLOP/s")
			})
		}
	}
}

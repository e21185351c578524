package mlp

import (
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

// Package mlbench holds the native engine's benchmarks that span packages:
// artifact prediction latency and logistic regression fit time. The MLP
// training throughput benchmark lives in pkg/ml/mlp; run.sh runs them all
// next to the PyTorch and scikit-learn references.
package mlbench

import (
	"testing"

	"github.com/bmaas/bmaas/pkg/ml/artifact"
	"github.com/bmaas/bmaas/pkg/ml/dataset"
	"github.com/bmaas/bmaas/pkg/ml/linear"
	"github.com/bmaas/bmaas/pkg/ml/preprocess"
	"github.com/bmaas/bmaas/pkg/ml/train"
)

const data = "../../examples/datasets/"

func load(b *testing.B, name string) *dataset.Frame {
	f, err := dataset.ReadFile(data+name, dataset.ReadOptions{})
	if err != nil {
		b.Fatal(err)
	}
	return f
}

// BenchmarkPredict: batch prediction latency through the artifact
// (pipeline + model) for 1 and 64 rows.
func BenchmarkPredict(b *testing.B) {
	f := load(b, "breast_cancer.csv")
	for _, algo := range []string{"mlp", "gbdt"} {
		params := map[string]string{"epochs": "5", "patience": "0"}
		if algo == "gbdt" {
			params = map[string]string{"rounds": "100", "patience": "0"}
		}
		m, err := train.Run(b.Context(), train.Spec{Algorithm: algo, Target: "target", Params: params, Seed: 1}, f, train.Callbacks{})
		if err != nil {
			b.Fatal(err)
		}
		raw := make([]float64, f.NumRows()*len(m.Inputs()))
		for j, name := range m.Inputs() {
			c, _ := f.Col(name)
			for r, v := range c.Num {
				raw[r*len(m.Inputs())+j] = v
			}
		}
		for _, rows := range []int{1, 64} {
			b.Run(algo+"/rows="+map[int]string{1: "1", 64: "64"}[rows], func(b *testing.B) {
				p := m.NewPredictor()
				out := make([]float64, rows*m.NumOutputs())
				x := raw[:rows*len(m.Inputs())]
				b.ReportAllocs()
				for b.Loop() {
					if err := p.PredictMatrix(x, rows, out); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
	_ = artifact.FormatVersion
}

// BenchmarkLogisticFit: binary logistic regression (C=1, Newton) on the
// standardised first 400 rows of breast_cancer, as the oracle.
func BenchmarkLogisticFit(b *testing.B) {
	f := load(b, "breast_cancer.csv")
	rows := make([]int, 400)
	for i := range rows {
		rows[i] = i
	}
	tf := f.Take(rows)
	names := f.Names()
	_, x, err := preprocess.Fit(tf, preprocess.Spec{Features: names[:30], Scale: "standard"})
	if err != nil {
		b.Fatal(err)
	}
	tc, _ := tf.Col("target")
	y := make([]int, len(tc.Num))
	for i, v := range tc.Num {
		y[i] = int(v)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := linear.FitLogistic(x, 400, 30, y, 2, linear.LogisticOptions{C: 1}); err != nil {
			b.Fatal(err)
		}
	}
}

package mlp

import (
	"math"
	"testing"

	"github.com/bmaas/bmaas/pkg/ml/dataset"
	"github.com/bmaas/bmaas/pkg/ml/metrics"
	"github.com/bmaas/bmaas/pkg/ml/preprocess"
	"github.com/stretchr/testify/require"
)

type data struct {
	x, y   []float32
	n, d   int
	xt, yt []float32
	nt     int
	labels []int
}

// load standardises a dataset and splits it 80/20 stratified.
func load(tb testing.TB, name string) data {
	f, err := dataset.ReadFile("../../../examples/datasets/"+name, dataset.ReadOptions{})
	require.NoError(tb, err)
	tc, _ := f.Col("target")
	strata := make([]int32, f.NumRows())
	for i, v := range tc.Num {
		strata[i] = int32(v)
	}
	parts, err := dataset.Split(f.NumRows(), []float64{0.8, 0.2}, 1, strata)
	require.NoError(tb, err)
	names := f.Names()
	p, x, err := preprocess.Fit(f.Take(parts[0]), preprocess.Spec{Features: names[:len(names)-1], Scale: "standard"})
	require.NoError(tb, err)
	tf := f.Take(parts[1])
	var ws preprocess.Workspace
	raw := make([]float64, tf.NumRows()*len(p.Inputs))
	require.NoError(tb, p.EncodeFrame(tf, raw, &ws))
	xt, err := p.Apply(raw, tf.NumRows(), &ws, 1)
	require.NoError(tb, err)
	d := data{n: len(parts[0]), d: p.NumFeatures(), nt: len(parts[1])}
	d.x, d.xt = to32(x), to32(xt)
	for _, r := range parts[0] {
		d.y = append(d.y, float32(tc.Num[r]))
	}
	for _, r := range parts[1] {
		d.yt = append(d.yt, float32(tc.Num[r]))
		d.labels = append(d.labels, int(tc.Num[r]))
	}
	return d
}

func to32(x []float64) []float32 {
	o := make([]float32, len(x))
	for i, v := range x {
		o[i] = float32(v)
	}
	return o
}

func adam(epochs int) Config {
	return Config{Hidden: []int{64, 64}, Optimizer: "adam", LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8,
		BatchSize: 32, Epochs: epochs, Schedule: "constant"}
}

func train(t *testing.T, tr *Trainer, d data) {
	tr.SetData(d.x, d.y, d.n)
	tr.SetValidation(d.xt, d.yt, d.nt)
	for !tr.Done() {
		_, _, err := tr.RunEpoch()
		require.NoError(t, err)
	}
	tr.Finish()
}

func TestDigitsAccuracy(t *testing.T) {
	t.Parallel()
	d := load(t, "digits.csv")
	tr, err := NewTrainer(adam(30), d.d, 10, Softmax, 7)
	require.NoError(t, err)
	train(t, tr, d)
	proba := make([]float64, d.nt*10)
	x64 := make([]float64, len(d.xt))
	for i, v := range d.xt {
		x64[i] = float64(v)
	}
	tr.Net.Predict(x64, d.nt, proba)
	acc := metrics.Accuracy(d.labels, metrics.Argmax(proba, 10))
	require.GreaterOrEqual(t, acc, 0.95)
}

func TestGradientCheck(t *testing.T) {
	t.Parallel()
	for _, act := range []Activation{ReLU, Tanh, Sigmoid, GELU} {
		for _, out := range []Output{Identity, SigmoidOutput, Softmax} {
			k := 3
			if out == SigmoidOutput {
				k = 1
			}
			cfg := Config{Hidden: []int{5}, Activation: act, Optimizer: "sgd", BatchSize: 4, Epochs: 1}
			tr, err := NewTrainer(cfg, 3, k, out, 3)
			require.NoError(t, err)
			x := []float32{0.5, -1, 2, 1, 0.3, -0.7, -0.2, 0.9, 0.1, 1.5, -1.2, 0.4}
			y := []float32{0, 1, 2, 1}
			if out == Identity {
				y = []float32{0.1, 1, -2, 1, 0.5, 0.3, -1, 0.2, 0.7, 1.1, 0.9, -0.4}
			}
			if out == SigmoidOutput {
				y = []float32{0, 1, 1, 0}
			}
			tr.SetData(x, y, 4)
			copy(tr.ws.acts[0], x)
			tr.cfg.LR = 0
			tr.trainStep(4, []int{0, 1, 2, 3}, 0)
			grads := append([]float32(nil), tr.grads...)
			for i := range tr.Net.Params {
				old := tr.Net.Params[i]
				h := float32(1e-2)
				tr.Net.Params[i] = old + h
				lp := tr.Loss(x, y, 4)
				tr.Net.Params[i] = old - h
				lm := tr.Loss(x, y, 4)
				tr.Net.Params[i] = old
				num := (lp - lm) / (2 * float64(h))
				require.InDelta(t, num, float64(grads[i]), 2e-3+2e-2*math.Abs(num), "act %v out %v param %d", act, out, i)
			}
		}
	}
}

func TestDeterministicAndResume(t *testing.T) {
	t.Parallel()
	d := load(t, "breast_cancer.csv")
	for _, opt := range []string{"adam", "sgd"} {
		cfg := adam(12)
		cfg.Optimizer, cfg.Momentum, cfg.Schedule, cfg.Gamma, cfg.StepSize, cfg.Patience = opt, 0.9, "step", 0.5, 4, 3
		cfg.LR = 0.05
		full, _ := NewTrainer(cfg, d.d, 1, SigmoidOutput, 11)
		train(t, full, d)
		again, _ := NewTrainer(cfg, d.d, 1, SigmoidOutput, 11)
		train(t, again, d)
		require.Equal(t, full.Net.Params, again.Net.Params)

		// Pause after 5 epochs, restore into a fresh trainer, finish.
		a, _ := NewTrainer(cfg, d.d, 1, SigmoidOutput, 11)
		a.SetData(d.x, d.y, d.n)
		a.SetValidation(d.xt, d.yt, d.nt)
		for range 5 {
			_, _, err := a.RunEpoch()
			require.NoError(t, err)
		}
		st, err := a.State()
		require.NoError(t, err)
		b, _ := NewTrainer(cfg, d.d, 1, SigmoidOutput, 999) // seed is restored
		require.NoError(t, b.Restore(st))
		train(t, b, d)
		require.Equal(t, full.Net.Params, b.Net.Params, opt)
		require.Equal(t, full.Epoch(), b.Epoch())
	}
}

package mlp

import (
	"math"
	"sync"
)

const predictChunk = 256

// predictor holds per-goroutine scratch for Predict.
type predictor struct {
	ws workspace
}

var pool = sync.Pool{New: func() any { return new(predictor) }}

// Predict writes rows × NumOutputs values for x (rows × NumFeatures,
// float64) into out: the regression values, or the class probabilities.
// It allocates nothing in steady state and is safe for concurrent use.
func (n *Net) Predict(x []float64, rows int, out []float64) {
	p := pool.Get().(*predictor)
	n.ensure(&p.ws, min(rows, predictChunk))
	in, no := n.Sizes[0], n.NumOutputs()
	last := len(n.Sizes) - 1
	k := n.Sizes[last]
	for start := 0; start < rows; start += predictChunk {
		m := min(predictChunk, rows-start)
		xb := p.ws.acts[0][:m*in]
		for i, v := range x[start*in : (start+m)*in] {
			xb[i] = float32(v)
		}
		n.forward(n.Params, &p.ws, m)
		z := p.ws.acts[last]
		o := out[start*no : (start+m)*no]
		for r := range m {
			zr := z[r*k : (r+1)*k]
			or := o[r*no : (r+1)*no]
			switch n.Output {
			case Identity:
				for j, v := range zr {
					or[j] = float64(v)
				}
			case SigmoidOutput:
				pr := float64(sigmoid32(zr[0]))
				or[0], or[1] = 1-pr, pr
			case Softmax:
				softmaxTo(zr, or)
			}
		}
	}
	pool.Put(p)
}

func softmaxTo(z []float32, out []float64) {
	m := float32(math.Inf(-1))
	for _, v := range z {
		m = max(m, v)
	}
	var s float64
	for j, v := range z {
		e := math.Exp(float64(v - m))
		out[j] = e
		s += e
	}
	for j := range z {
		out[j] /= s
	}
}

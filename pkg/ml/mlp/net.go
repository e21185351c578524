// Package mlp is a float32 multilayer perceptron: dense layers with ReLU,
// tanh, sigmoid or GELU activations; identity, sigmoid or softmax output;
// SGD with momentum or Adam, weight decay, mini-batches, learning-rate
// schedules, early stopping, and checkpoints that resume bit for bit.
package mlp

import (
	"fmt"
	"math"
)

// Activation of the hidden layers.
type Activation int

// Activations.
const (
	ReLU Activation = iota
	Tanh
	Sigmoid
	GELU
)

// ParseActivation maps a name to an Activation.
func ParseActivation(s string) (Activation, error) {
	switch s {
	case "relu", "":
		return ReLU, nil
	case "tanh":
		return Tanh, nil
	case "sigmoid":
		return Sigmoid, nil
	case "gelu":
		return GELU, nil
	}
	return 0, fmt.Errorf("activation %q: want relu, tanh, sigmoid or gelu", s)
}

func (a Activation) String() string { return [...]string{"relu", "tanh", "sigmoid", "gelu"}[a] }

// Output is the output layer's function and, with it, the loss.
type Output int

const (
	// Identity output, mean squared error (regression).
	Identity Output = iota
	// SigmoidOutput, binary cross-entropy (binary classification, 1 unit).
	SigmoidOutput
	// Softmax output, cross-entropy (multiclass).
	Softmax
)

// Net is the network: Sizes[0] inputs, Sizes[len-1] outputs. Layer l has
// weights W_l (Sizes[l] × Sizes[l+1], row-major, input-major) followed by
// its bias, all stored contiguously in Params.
type Net struct {
	Sizes      []int
	Activation Activation
	Output     Output
	Params     []float32
}

// NewNet allocates a network with zero parameters.
func NewNet(sizes []int, act Activation, out Output) (*Net, error) {
	if len(sizes) < 2 {
		return nil, fmt.Errorf("mlp: need at least an input and an output layer")
	}
	n := 0
	for l := 0; l+1 < len(sizes); l++ {
		if sizes[l] <= 0 || sizes[l+1] <= 0 {
			return nil, fmt.Errorf("mlp: layer sizes %v must be > 0", sizes)
		}
		n += sizes[l]*sizes[l+1] + sizes[l+1]
	}
	return &Net{Sizes: append([]int(nil), sizes...), Activation: act, Output: out, Params: make([]float32, n)}, nil
}

// NumParams is the number of parameters implied by sizes.
func NumParams(sizes []int) int {
	n := 0
	for l := 0; l+1 < len(sizes); l++ {
		n += sizes[l]*sizes[l+1] + sizes[l+1]
	}
	return n
}

// layer returns views of the weights and bias of layer l in p.
func (n *Net) layer(p []float32, l int) (w, b []float32) {
	off := 0
	for i := 0; i < l; i++ {
		off += n.Sizes[i]*n.Sizes[i+1] + n.Sizes[i+1]
	}
	in, out := n.Sizes[l], n.Sizes[l+1]
	return p[off : off+in*out], p[off+in*out : off+in*out+out]
}

// NumFeatures is the input width.
func (n *Net) NumFeatures() int { return n.Sizes[0] }

// NumOutputs is the output width per row: 2 probabilities for a sigmoid
// output, else the last layer's size.
func (n *Net) NumOutputs() int {
	if n.Output == SigmoidOutput {
		return 2
	}
	return n.Sizes[len(n.Sizes)-1]
}

// workspace holds the activations of a batch.
type workspace struct {
	acts []([]float32) // acts[0] = input, acts[l+1] = output of layer l
	pre  []([]float32) // pre-activations of hidden layers (for GELU etc.)
	grad [2][]float32
	cap  int
}

func (n *Net) ensure(ws *workspace, batch int) {
	if n.fits(ws, batch) {
		return
	}
	ws.acts = make([][]float32, len(n.Sizes))
	ws.pre = make([][]float32, len(n.Sizes))
	maxw := 0
	for l, s := range n.Sizes {
		ws.acts[l] = make([]float32, batch*s)
		ws.pre[l] = make([]float32, batch*s)
		maxw = max(maxw, s)
	}
	ws.grad[0] = make([]float32, batch*maxw)
	ws.grad[1] = make([]float32, batch*maxw)
	ws.cap = batch
}

// fits reports whether ws holds a batch of this net's layer widths: a
// workspace pooled across nets of the same depth but other widths does not.
func (n *Net) fits(ws *workspace, batch int) bool {
	if ws.cap < batch || len(ws.acts) != len(n.Sizes) {
		return false
	}
	maxw := 0
	for l, s := range n.Sizes {
		if len(ws.acts[l]) < batch*s || len(ws.pre[l]) < batch*s {
			return false
		}
		maxw = max(maxw, s)
	}
	return len(ws.grad[0]) >= batch*maxw && len(ws.grad[1]) >= batch*maxw
}

// forward runs a batch held in ws.acts[0][:rows*Sizes[0]] and leaves the
// output pre-activation (logits) in ws.acts[last].
func (n *Net) forward(p []float32, ws *workspace, rows int) {
	last := len(n.Sizes) - 1
	for l := 0; l < last; l++ {
		in, out := n.Sizes[l], n.Sizes[l+1]
		w, b := n.layer(p, l)
		x, z := ws.acts[l][:rows*in], ws.acts[l+1][:rows*out]
		gemmNN(rows, out, in, x, w, z)
		for r := range rows {
			zr := z[r*out : (r+1)*out]
			zr = zr[:len(b)]
			for j, bv := range b {
				zr[j] += bv
			}
		}
		if l+1 < last {
			copy(ws.pre[l+1][:rows*out], z)
			activate(n.Activation, z)
		}
	}
}

func activate(a Activation, z []float32) {
	switch a {
	case ReLU:
		for i, v := range z {
			if v < 0 {
				z[i] = 0
			}
		}
	case Tanh:
		for i, v := range z {
			z[i] = float32(math.Tanh(float64(v)))
		}
	case Sigmoid:
		for i, v := range z {
			z[i] = sigmoid32(v)
		}
	case GELU:
		for i, v := range z {
			z[i] = gelu(v)
		}
	}
}

// activationGrad multiplies g by the activation's derivative at pre.
func activationGrad(a Activation, pre, act, g []float32) {
	g = g[:len(pre)]
	act = act[:len(pre)]
	switch a {
	case ReLU:
		for i, v := range pre {
			if v <= 0 {
				g[i] = 0
			}
		}
	case Tanh:
		for i, y := range act {
			g[i] *= 1 - y*y
		}
	case Sigmoid:
		for i, y := range act {
			g[i] *= y * (1 - y)
		}
	case GELU:
		for i, v := range pre {
			g[i] *= geluGrad(v)
		}
	}
}

func sigmoid32(v float32) float32 {
	if v >= 0 {
		return float32(1 / (1 + math.Exp(-float64(v))))
	}
	e := math.Exp(float64(v))
	return float32(e / (1 + e))
}

const geluC = 0.7978845608028654 // sqrt(2/pi)

// gelu is the tanh approximation of GELU.
func gelu(v float32) float32 {
	x := float64(v)
	return float32(0.5 * x * (1 + math.Tanh(geluC*(x+0.044715*x*x*x))))
}

func geluGrad(v float32) float32 {
	x := float64(v)
	u := geluC * (x + 0.044715*x*x*x)
	t := math.Tanh(u)
	du := geluC * (1 + 3*0.044715*x*x)
	return float32(0.5*(1+t) + 0.5*x*(1-t*t)*du)
}

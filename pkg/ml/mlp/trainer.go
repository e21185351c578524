package mlp

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
)

// Config holds the training hyperparameters.
type Config struct {
	Hidden      []int
	Activation  Activation
	Optimizer   string  // "adam" or "sgd" (with momentum)
	LR          float64 // initial learning rate
	Momentum    float64 // sgd
	Beta1       float64 // adam
	Beta2       float64 // adam
	Eps         float64 // adam
	WeightDecay float64 // L2 added to every gradient, as torch.optim
	BatchSize   int
	Epochs      int
	Schedule    string  // "constant", "step", "exponential" or "cosine"
	StepSize    int     // epochs between decays of "step"
	Gamma       float64 // decay factor of "step" and "exponential"
	// Patience stops training after that many epochs without a better
	// validation loss and restores the best weights (0: off).
	Patience int
}

// ErrNoData: training without data.
var ErrNoData = errors.New("mlp: no training rows")

// Trainer trains a Net epoch by epoch. Its whole state (State) can be
// saved after any epoch and restored into a fresh Trainer built with the
// same Config, dimensions and seed; the run then continues bit for bit.
type Trainer struct {
	Net *Net
	cfg Config

	grads, m, v []float32
	step        int64
	epoch       int
	pcg         *rand.PCG
	rng         *rand.Rand
	best        []float32
	bestLoss    float64
	bad         int
	stopped     bool

	ws       workspace
	perm     []int
	x, y     []float32
	n, yw    int
	xv, yv   []float32
	nv       int
	lastLoss float64
	lastVal  float64
}

// NewTrainer initialises a network of sizes in, Hidden..., out with the
// seed (uniform ±1/sqrt(fan_in), as torch.nn.Linear).
func NewTrainer(cfg Config, in, out int, output Output, seed uint64) (*Trainer, error) {
	sizes := append(append([]int{in}, cfg.Hidden...), out)
	net, err := NewNet(sizes, cfg.Activation, output)
	if err != nil {
		return nil, err
	}
	pcg := rand.NewPCG(seed, seed^0xda3e39cb94b95bdb)
	t := &Trainer{Net: net, cfg: cfg, pcg: pcg, rng: rand.New(pcg), bestLoss: math.Inf(1), lastVal: math.NaN()}
	for l := 0; l+1 < len(sizes); l++ {
		w, b := net.layer(net.Params, l)
		bound := float32(1 / math.Sqrt(float64(sizes[l])))
		for i := range w {
			w[i] = (t.rng.Float32()*2 - 1) * bound
		}
		for i := range b {
			b[i] = (t.rng.Float32()*2 - 1) * bound
		}
	}
	np := len(net.Params)
	t.grads, t.m = make([]float32, np), make([]float32, np)
	if cfg.Optimizer == "adam" {
		t.v = make([]float32, np)
	}
	return t, nil
}

// SetData sets the training rows: x is n × in; y is n × out for identity
// and sigmoid outputs, or n class indices for softmax.
func (t *Trainer) SetData(x, y []float32, n int) {
	t.x, t.y, t.n = x, y, n
	t.yw = 1
	if t.Net.Output == Identity {
		t.yw = t.Net.Sizes[len(t.Net.Sizes)-1]
	}
	t.perm = make([]int, n)
	t.Net.ensure(&t.ws, min(max(t.cfg.BatchSize, 1), max(n, 1)))
}

// SetValidation sets the rows used for early stopping and reporting.
func (t *Trainer) SetValidation(x, y []float32, n int) { t.xv, t.yv, t.nv = x, y, n }

// Epoch is the number of completed epochs.
func (t *Trainer) Epoch() int { return t.epoch }

// Done reports whether training is over (epochs reached or early stop).
func (t *Trainer) Done() bool { return t.stopped || t.epoch >= t.cfg.Epochs }

// LR is the learning rate of the given epoch.
func (t *Trainer) LR(epoch int) float64 {
	c := t.cfg
	switch c.Schedule {
	case "step":
		return c.LR * math.Pow(c.Gamma, float64(epoch/max(c.StepSize, 1)))
	case "exponential":
		return c.LR * math.Pow(c.Gamma, float64(epoch))
	case "cosine":
		return c.LR * 0.5 * (1 + math.Cos(math.Pi*float64(epoch)/float64(max(c.Epochs, 1))))
	}
	return c.LR
}

// RunEpoch trains one epoch and returns the mean training loss and the
// validation loss (NaN without validation data).
func (t *Trainer) RunEpoch() (trainLoss, valLoss float64, err error) {
	if t.n == 0 {
		return 0, 0, ErrNoData
	}
	if t.Done() {
		return t.lastLoss, t.lastVal, nil
	}
	for i := range t.perm {
		t.perm[i] = i
	}
	t.rng.Shuffle(t.n, func(i, j int) { t.perm[i], t.perm[j] = t.perm[j], t.perm[i] })
	lr := float32(t.LR(t.epoch))
	bs := max(t.cfg.BatchSize, 1)
	in := t.Net.Sizes[0]
	var total float64
	for start := 0; start < t.n; start += bs {
		rows := min(bs, t.n-start)
		xb := t.ws.acts[0]
		for r, idx := range t.perm[start : start+rows] {
			copy(xb[r*in:(r+1)*in], t.x[idx*in:(idx+1)*in])
		}
		total += t.trainStep(rows, t.perm[start:start+rows], lr) * float64(rows)
	}
	t.epoch++
	t.lastLoss = total / float64(t.n)
	t.lastVal = math.NaN()
	if t.nv > 0 {
		t.lastVal = t.Loss(t.xv, t.yv, t.nv)
		if t.cfg.Patience > 0 {
			if t.lastVal < t.bestLoss {
				t.bestLoss, t.bad = t.lastVal, 0
				t.best = append(t.best[:0], t.Net.Params...)
			} else if t.bad++; t.bad >= t.cfg.Patience {
				t.stopped = true
			}
		}
	}
	return t.lastLoss, t.lastVal, nil
}

// Finish ends training: with early stopping, the network takes the
// parameters of its best validation epoch. Call it once Done; the state
// before it (see State) can still be extended with more epochs.
func (t *Trainer) Finish() {
	if t.best != nil {
		copy(t.Net.Params, t.best)
	}
}

// Loss is the mean loss of the current network on (x, y, n).
func (t *Trainer) Loss(x, y []float32, n int) float64 {
	var ws workspace
	bs := min(256, n)
	t.Net.ensure(&ws, bs)
	in := t.Net.Sizes[0]
	var total float64
	for start := 0; start < n; start += bs {
		rows := min(bs, n-start)
		copy(ws.acts[0][:rows*in], x[start*in:(start+rows)*in])
		t.Net.forward(t.Net.Params, &ws, rows)
		total += t.outputLoss(&ws, rows, y[start*t.yw:], nil) * float64(rows)
	}
	return total / float64(n)
}

func (t *Trainer) String() string {
	return fmt.Sprintf("mlp%v epoch %d", t.Net.Sizes, t.epoch)
}

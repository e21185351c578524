package gbdt

import (
	"errors"
	"math"
	"math/rand/v2"
)

// Config holds the boosting hyperparameters.
type Config struct {
	Rounds         int     // boosting rounds
	LearningRate   float64 // shrinkage
	MaxDepth       int     // 0: unlimited (then MaxLeaves bounds the tree)
	MaxLeaves      int     // 0: 2^MaxDepth
	MinChildWeight float64 // minimum hessian sum in a child
	Lambda         float64 // L2 on leaf values
	Subsample      float64 // fraction of rows per tree, (0, 1]
	ColSample      float64 // fraction of features per tree, (0, 1]
	MaxBins        int     // histogram bins per feature, 2..256
	// Patience stops after that many rounds without a better validation
	// loss and keeps the best rounds (0: off).
	Patience int
}

// ErrNoData: training without rows.
var ErrNoData = errors.New("gbdt: no training rows")

// Booster trains a Model round by round; see State for checkpoints.
type Booster struct {
	Model *Model
	cfg   Config

	pcg *rand.PCG
	rng *rand.Rand

	n, d    int
	y       []float64
	bins    []uint8
	binner  *binner
	f       []float64 // raw scores n×K
	xv, yv  []float64
	nv      int
	fv      []float64
	round   int
	best    int
	bestVal float64
	bad     int
	stopped bool

	g, h     []float64
	rows     []int32
	features []int
}

// NewBooster prepares training on x (n × d) with targets y (values, or
// class indices 0..k-1); k is the number of classes (1 for regression).
func NewBooster(cfg Config, obj Objective, x []float64, n, d int, y []float64, k int, seed uint64) (*Booster, error) {
	if n == 0 {
		return nil, ErrNoData
	}
	if obj != Multiclass {
		k = 1
	}
	pcg := rand.NewPCG(seed, seed^0x2545f4914f6cdd1d)
	b := &Booster{cfg: cfg, pcg: pcg, rng: rand.New(pcg), n: n, d: d, y: y, bestVal: math.Inf(1)}
	b.Model = &Model{Objective: obj, Features: d, K: k, Base: make([]float64, k)}
	b.binner = newBinner(x, n, d, max(min(cfg.MaxBins, 256), 2))
	b.bins = b.binner.bin(x, n, d)
	// Base score: the mean (regression), log-odds (binary), log priors.
	switch obj {
	case Regression:
		var s float64
		for _, v := range y {
			s += v
		}
		b.Model.Base[0] = s / float64(n)
	case Binary:
		var p float64
		for _, v := range y {
			p += v
		}
		p = math.Min(math.Max(p/float64(n), 1e-12), 1-1e-12)
		b.Model.Base[0] = math.Log(p / (1 - p))
	case Multiclass:
		cnt := make([]float64, k)
		for _, v := range y {
			cnt[int(v)]++
		}
		for c := range k {
			b.Model.Base[c] = math.Log(math.Max(cnt[c], 1) / float64(n))
		}
	}
	b.f = make([]float64, n*k)
	for i := range n {
		copy(b.f[i*k:(i+1)*k], b.Model.Base)
	}
	b.g, b.h = make([]float64, n), make([]float64, n)
	return b, nil
}

// SetValidation sets the rows used for early stopping.
func (b *Booster) SetValidation(x []float64, n int, y []float64) {
	k := b.Model.K
	b.xv, b.yv, b.nv = x, y, n
	b.fv = make([]float64, n*k)
	for i := range n {
		copy(b.fv[i*k:(i+1)*k], b.Model.Base)
	}
	for t := range b.Model.Trees { // when validation is set after a restore
		c := t % k
		for i := range n {
			b.fv[i*k+c] += b.Model.Trees[t].predict(x[i*b.d : (i+1)*b.d])
		}
	}
}

// Round is the number of completed rounds.
func (b *Booster) Round() int { return b.round }

// Done reports whether boosting is over.
func (b *Booster) Done() bool { return b.stopped || b.round >= b.cfg.Rounds }

// RunRound grows the trees of one round and returns the training and
// validation losses (NaN without validation data).
func (b *Booster) RunRound() (trainLoss, valLoss float64) {
	if b.Done() {
		return loss(b.Model.Objective, b.f, b.y, b.Model.K), math.NaN()
	}
	k := b.Model.K
	b.sample()
	for c := range k {
		b.gradients(c)
		t := b.grow()
		for i := range b.n {
			xi := i // scores on the training rows follow the binned path
			b.f[xi*k+c] += t.predictBinned(b.bins, b.n, xi)
		}
		for i := range b.nv {
			b.fv[i*k+c] += t.predict(b.xv[i*b.d : (i+1)*b.d])
		}
		b.Model.Trees = append(b.Model.Trees, t.Tree)
	}
	b.round++
	trainLoss = loss(b.Model.Objective, b.f, b.y, k)
	valLoss = math.NaN()
	if b.nv > 0 {
		valLoss = loss(b.Model.Objective, b.fv, b.yv, k)
		if b.cfg.Patience > 0 {
			if valLoss < b.bestVal {
				b.bestVal, b.best, b.bad = valLoss, b.round, 0
			} else if b.bad++; b.bad >= b.cfg.Patience {
				b.stopped = true
			}
		}
	}
	return trainLoss, valLoss
}

// Finish ends boosting: with early stopping, the model keeps the trees of
// its best validation round. Call it once Done; the state before it (see
// State) can still be extended with more rounds.
func (b *Booster) Finish() {
	if b.cfg.Patience > 0 && b.nv > 0 && b.best > 0 {
		b.Model.Trees = b.Model.Trees[:b.best*b.Model.K]
	}
}

// sample draws the rows and features of this round.
func (b *Booster) sample() {
	b.rows = b.rows[:0]
	for i := range b.n {
		if b.cfg.Subsample >= 1 || b.rng.Float64() < b.cfg.Subsample {
			b.rows = append(b.rows, int32(i))
		}
	}
	if len(b.rows) == 0 {
		b.rows = append(b.rows, int32(b.rng.IntN(b.n)))
	}
	b.features = b.features[:0]
	perm := b.rng.Perm(b.d)
	m := max(1, int(math.Round(b.cfg.ColSample*float64(b.d))))
	if b.cfg.ColSample >= 1 {
		m = b.d
	}
	b.features = append(b.features, perm[:m]...)
}

// gradients fills g and h for class c.
func (b *Booster) gradients(c int) {
	k := b.Model.K
	switch b.Model.Objective {
	case Regression:
		for i := range b.n {
			b.g[i], b.h[i] = b.f[i]-b.y[i], 1
		}
	case Binary:
		for i := range b.n {
			p := sigmoid(b.f[i])
			b.g[i], b.h[i] = p-b.y[i], math.Max(p*(1-p), 1e-16)
		}
	case Multiclass:
		for i := range b.n {
			row := b.f[i*k : (i+1)*k]
			mx := math.Inf(-1)
			for _, v := range row {
				mx = math.Max(mx, v)
			}
			var s float64
			for _, v := range row {
				s += math.Exp(v - mx)
			}
			p := math.Exp(row[c]-mx) / s
			yc := 0.0
			if int(b.y[i]) == c {
				yc = 1
			}
			b.g[i], b.h[i] = p-yc, math.Max(p*(1-p), 1e-16)
		}
	}
}

// loss is the mean squared error, log loss or cross-entropy of raw scores.
func loss(obj Objective, f, y []float64, k int) float64 {
	var s float64
	n := len(y)
	for i := range n {
		switch obj {
		case Regression:
			d := f[i] - y[i]
			s += d * d
		case Binary:
			z := f[i]
			s += math.Max(z, 0) - z*y[i] + math.Log1p(math.Exp(-math.Abs(z)))
		case Multiclass:
			row := f[i*k : (i+1)*k]
			mx := math.Inf(-1)
			for _, v := range row {
				mx = math.Max(mx, v)
			}
			var e float64
			for _, v := range row {
				e += math.Exp(v - mx)
			}
			s += mx + math.Log(e) - row[int(y[i])]
		}
	}
	return s / float64(n)
}

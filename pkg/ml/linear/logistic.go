package linear

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/mat"
	"gonum.org/v1/gonum/optimize"
)

// LogisticOptions configure FitLogistic.
type LogisticOptions struct {
	// C is the inverse L2 strength: the penalty is |W|²/(2C) on the
	// summed log loss; the intercepts are not penalised (default 1).
	C float64
	// MaxIter bounds the Newton or L-BFGS iterations (default 100 / 1000).
	MaxIter int
	// Tol is the gradient tolerance, max-norm (default 1e-8).
	Tol float64
}

// FitLogistic fits a logistic regression on x (rows × d) with labels y in
// [0, k). k == 2 fits a binary model by Newton's method, k > 2 a
// multinomial one by L-BFGS.
func FitLogistic(x []float64, rows, d int, y []int, k int, opt LogisticOptions) (*Model, error) {
	if opt.C == 0 {
		opt.C = 1
	}
	if opt.C < 0 || math.IsNaN(opt.C) {
		return nil, fmt.Errorf("logistic: C %v must be > 0", opt.C)
	}
	if opt.Tol <= 0 {
		opt.Tol = 1e-8
	}
	if k < 2 {
		return nil, fmt.Errorf("logistic: need at least 2 classes, got %d", k)
	}
	if k == 2 {
		if opt.MaxIter <= 0 {
			opt.MaxIter = 100
		}
		return fitBinary(x, rows, d, y, 1/opt.C, opt)
	}
	if opt.MaxIter <= 0 {
		opt.MaxIter = 1000
	}
	return fitMultinomial(x, rows, d, y, k, 1/opt.C, opt)
}

// binaryLoss is the penalised negative log-likelihood of theta = [w, b].
func binaryLoss(x []float64, rows, d int, y []int, lambda float64, theta []float64) float64 {
	var l float64
	for r := range rows {
		z := theta[d]
		for j, v := range x[r*d : (r+1)*d] {
			z += theta[j] * v
		}
		// log(1+e^z) - y z, computed stably
		if z > 0 {
			l += z + math.Log1p(math.Exp(-z))
		} else {
			l += math.Log1p(math.Exp(z))
		}
		if y[r] == 1 {
			l -= z
		}
	}
	for j := range d {
		l += 0.5 * lambda * theta[j] * theta[j]
	}
	return l
}

func fitBinary(x []float64, rows, d int, y []int, lambda float64, opt LogisticOptions) (*Model, error) {
	p := d + 1
	theta := make([]float64, p)
	g := make([]float64, p)
	h := mat.NewSymDense(p, nil)
	hd := make([]float64, p*p)
	xr := make([]float64, p)
	trial := make([]float64, p)
	loss := binaryLoss(x, rows, d, y, lambda, theta)
	for it := 0; it < opt.MaxIter; it++ {
		clear(g)
		clear(hd)
		for r := range rows {
			copy(xr, x[r*d:(r+1)*d])
			xr[d] = 1
			z := 0.0
			for j, v := range xr {
				z += theta[j] * v
			}
			pr := sigmoid(z)
			res := pr - float64(y[r])
			s := pr * (1 - pr)
			for a, va := range xr {
				g[a] += res * va
				row := hd[a*p:]
				sa := s * va
				for b := a; b < p; b++ {
					row[b] += sa * xr[b]
				}
			}
		}
		gmax := 0.0
		for j := range p {
			if j < d {
				g[j] += lambda * theta[j]
				hd[j*p+j] += lambda
			}
			gmax = math.Max(gmax, math.Abs(g[j]))
		}
		if gmax <= opt.Tol*math.Max(1, float64(rows)) {
			return binaryModel(theta, d), nil
		}
		for a := range p {
			for b := a; b < p; b++ {
				h.SetSym(a, b, hd[a*p+b])
			}
		}
		var ch mat.Cholesky
		if !ch.Factorize(h) {
			for a := range p { // a flat direction (lambda == 0): damp it
				h.SetSym(a, a, h.At(a, a)+1e-8)
			}
			if !ch.Factorize(h) {
				return nil, fmt.Errorf("logistic: %w: hessian not positive definite", ErrNotConverged)
			}
		}
		var step mat.VecDense
		if err := ch.SolveVecTo(&step, mat.NewVecDense(p, g)); err != nil {
			return nil, fmt.Errorf("logistic: %w: %v", ErrNotConverged, err)
		}
		t := 1.0
		for ls := 0; ; ls++ {
			for j := range p {
				trial[j] = theta[j] - t*step.AtVec(j)
			}
			nl := binaryLoss(x, rows, d, y, lambda, trial)
			if nl <= loss || ls == 30 {
				copy(theta, trial)
				if math.Abs(loss-nl) <= 1e-15*math.Max(1, math.Abs(loss)) && t < 1 {
					return binaryModel(theta, d), nil
				}
				loss = nl
				break
			}
			t /= 2
		}
	}
	return nil, fmt.Errorf("logistic: %w in %d Newton iterations", ErrNotConverged, opt.MaxIter)
}

func binaryModel(theta []float64, d int) *Model {
	return &Model{Features: d, Coef: append([]float64(nil), theta[:d]...), Intercept: []float64{theta[d]}, Link: Logit}
}

func fitMultinomial(x []float64, rows, d int, y []int, k int, lambda float64, opt LogisticOptions) (*Model, error) {
	p := d + 1
	scores := make([]float64, k)
	lossGrad := func(grad, theta []float64) float64 {
		if grad != nil {
			clear(grad)
		}
		var l float64
		for r := range rows {
			xr := x[r*d : (r+1)*d]
			for c := range k {
				w := theta[c*p : (c+1)*p]
				s := w[d]
				for j, v := range xr {
					s += w[j] * v
				}
				scores[c] = s
			}
			m := math.Inf(-1)
			for _, s := range scores {
				m = math.Max(m, s)
			}
			var z float64
			for _, s := range scores {
				z += math.Exp(s - m)
			}
			lse := m + math.Log(z)
			l += lse - scores[y[r]]
			if grad == nil {
				continue
			}
			for c := range k {
				res := math.Exp(scores[c] - lse)
				if c == y[r] {
					res--
				}
				gw := grad[c*p : (c+1)*p]
				for j, v := range xr {
					gw[j] += res * v
				}
				gw[d] += res
			}
		}
		for c := range k {
			for j := range d {
				w := theta[c*p+j]
				l += 0.5 * lambda * w * w
				if grad != nil {
					grad[c*p+j] += lambda * w
				}
			}
		}
		return l
	}
	prob := optimize.Problem{
		Func: func(theta []float64) float64 { return lossGrad(nil, theta) },
		Grad: func(grad, theta []float64) { lossGrad(grad, theta) },
	}
	settings := &optimize.Settings{
		GradientThreshold: opt.Tol * math.Max(1, float64(rows)),
		MajorIterations:   opt.MaxIter,
	}
	res, err := optimize.Minimize(prob, make([]float64, k*p), settings, &optimize.LBFGS{})
	if err != nil && res == nil {
		return nil, fmt.Errorf("logistic: %w: %v", ErrNotConverged, err)
	}
	if res.Status == optimize.IterationLimit {
		return nil, fmt.Errorf("logistic: %w in %d L-BFGS iterations", ErrNotConverged, opt.MaxIter)
	}
	m := &Model{Features: d, Coef: make([]float64, k*d), Intercept: make([]float64, k), Link: Softmax}
	for c := range k {
		copy(m.Coef[c*d:(c+1)*d], res.X[c*p:c*p+d])
		m.Intercept[c] = res.X[c*p+d]
	}
	return m, nil
}

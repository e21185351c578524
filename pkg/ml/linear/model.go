// Package linear fits linear models: least squares (QR), ridge and
// logistic regression (binary by Newton's method, multinomial by L-BFGS).
package linear

import (
	"errors"
	"math"
)

// Sentinel errors.
var (
	// ErrSingular: the design matrix is rank deficient (OLS).
	ErrSingular = errors.New("singular design matrix")
	// ErrNotConverged: the solver hit its iteration limit.
	ErrNotConverged = errors.New("solver did not converge")
)

// Link maps the linear scores to the outputs.
type Link int

const (
	// Identity: regression, one output per row of Coef.
	Identity Link = iota
	// Logit: binary classification, one row of Coef; outputs
	// [P(class 0), P(class 1)].
	Logit
	// Softmax: multiclass, one row of Coef per class; outputs the class
	// probabilities.
	Softmax
)

// Model is a fitted linear model: scores = Coef·x + Intercept.
type Model struct {
	Features  int
	Coef      []float64 // rows × Features, row-major
	Intercept []float64 // one per row of Coef
	Link      Link
}

// NumFeatures is the input width.
func (m *Model) NumFeatures() int { return m.Features }

// NumOutputs is the output width per row.
func (m *Model) NumOutputs() int {
	if m.Link == Logit {
		return 2
	}
	return len(m.Intercept)
}

// Predict writes rows × NumOutputs values for x (rows × Features) into
// out. It allocates nothing.
func (m *Model) Predict(x []float64, rows int, out []float64) {
	d, k, no := m.Features, len(m.Intercept), m.NumOutputs()
	for r := range rows {
		xr := x[r*d : (r+1)*d]
		o := out[r*no : (r+1)*no]
		for c := range k {
			w := m.Coef[c*d : (c+1)*d]
			s := m.Intercept[c]
			for j, v := range xr {
				s += w[j] * v
			}
			o[c] = s
		}
		switch m.Link {
		case Logit:
			p := sigmoid(o[0])
			o[0], o[1] = 1-p, p
		case Softmax:
			softmax(o)
		}
	}
}

func sigmoid(z float64) float64 {
	if z >= 0 {
		return 1 / (1 + math.Exp(-z))
	}
	e := math.Exp(z)
	return e / (1 + e)
}

// softmax normalises s in place.
func softmax(s []float64) {
	m := math.Inf(-1)
	for _, v := range s {
		m = math.Max(m, v)
	}
	var z float64
	for i, v := range s {
		s[i] = math.Exp(v - m)
		z += s[i]
	}
	for i := range s {
		s[i] /= z
	}
}

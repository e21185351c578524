// Package gbdt trains histogram-based gradient-boosted decision trees for
// regression (squared error), binary (logistic) and multiclass (softmax)
// tasks, with depth and leaf limits, shrinkage, row and column
// subsampling, minimum child weight, early stopping and resumable state.
package gbdt

import "math"

// Objective selects the loss.
type Objective int

// Objectives.
const (
	Regression Objective = iota
	Binary
	Multiclass
)

// Tree is a binary tree in flat arrays. Node 0 is the root; a node with
// Left[i] < 0 is a leaf holding Value[i]. An inner node sends x to
// Left[i] when x[Feature[i]] <= Threshold[i], else to Right[i].
type Tree struct {
	Feature   []int32
	Threshold []float64
	Left      []int32
	Right     []int32
	Value     []float64
}

func (t *Tree) predict(x []float64) float64 {
	i := int32(0)
	for t.Left[i] >= 0 {
		if x[t.Feature[i]] <= t.Threshold[i] {
			i = t.Left[i]
		} else {
			i = t.Right[i]
		}
	}
	return t.Value[i]
}

// Model is a fitted ensemble: K scores per row (K = 1 except multiclass),
// each the base score plus the sum of the trees of that class.
type Model struct {
	Objective Objective
	Features  int
	K         int
	Base      []float64
	// Trees[r*K+k] is the tree of round r for class k.
	Trees []Tree
}

// NumFeatures is the input width.
func (m *Model) NumFeatures() int { return m.Features }

// NumOutputs is the output width per row.
func (m *Model) NumOutputs() int {
	if m.Objective == Binary {
		return 2
	}
	return m.K
}

// Predict writes rows × NumOutputs values (the regression value, or the
// class probabilities) for x (rows × Features) into out. It allocates
// nothing.
func (m *Model) Predict(x []float64, rows int, out []float64) {
	no := m.NumOutputs()
	for r := range rows {
		xr := x[r*m.Features : (r+1)*m.Features]
		o := out[r*no : (r+1)*no]
		for k := range m.K {
			s := m.Base[k]
			for t := k; t < len(m.Trees); t += m.K {
				s += m.Trees[t].predict(xr)
			}
			o[k] = s
		}
		link(m.Objective, o)
	}
}

// link turns raw scores into outputs in place (o has NumOutputs slots).
func link(obj Objective, o []float64) {
	switch obj {
	case Binary:
		p := sigmoid(o[0])
		o[0], o[1] = 1-p, p
	case Multiclass:
		mx := math.Inf(-1)
		for _, v := range o {
			mx = math.Max(mx, v)
		}
		var s float64
		for i, v := range o {
			o[i] = math.Exp(v - mx)
			s += o[i]
		}
		for i := range o {
			o[i] /= s
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

// Package metrics computes classification and regression metrics with
// the definitions of scikit-learn.
package metrics

import "math"

// Average selects how per-class precision, recall and F1 are combined.
type Average int

const (
	// Binary reports the positive class only.
	Binary Average = iota
	// Macro is the unweighted mean over classes.
	Macro
	// Micro counts true and false positives over all classes.
	Micro
	// Weighted weights each class by its support.
	Weighted
)

// Accuracy is the fraction of equal labels.
func Accuracy(yTrue, yPred []int) float64 {
	if len(yTrue) == 0 {
		return 0
	}
	ok := 0
	for i := range yTrue {
		if yTrue[i] == yPred[i] {
			ok++
		}
	}
	return float64(ok) / float64(len(yTrue))
}

// ConfusionMatrix returns m[true][pred] counts for k classes.
func ConfusionMatrix(yTrue, yPred []int, k int) [][]int64 {
	m := make([][]int64, k)
	for i := range m {
		m[i] = make([]int64, k)
	}
	for i := range yTrue {
		m[yTrue[i]][yPred[i]]++
	}
	return m
}

// PRF holds precision, recall and F1.
type PRF struct{ Precision, Recall, F1 float64 }

// PrecisionRecallF1 computes the scores for k classes; pos is the positive
// class for Binary. Undefined ratios (0/0) count as 0, as in scikit-learn.
func PrecisionRecallF1(yTrue, yPred []int, k int, avg Average, pos int) PRF {
	cm := ConfusionMatrix(yTrue, yPred, k)
	tp := make([]float64, k)
	fp := make([]float64, k)
	fn := make([]float64, k)
	for t := range k {
		for p := range k {
			c := float64(cm[t][p])
			if t == p {
				tp[t] += c
			} else {
				fp[p] += c
				fn[t] += c
			}
		}
	}
	score := func(tp, fp, fn float64) PRF {
		p, r := div(tp, tp+fp), div(tp, tp+fn)
		return PRF{p, r, div(2*p*r, p+r)}
	}
	switch avg {
	case Binary:
		return score(tp[pos], fp[pos], fn[pos])
	case Micro:
		var a, b, c float64
		for i := range k {
			a, b, c = a+tp[i], b+fp[i], c+fn[i]
		}
		return score(a, b, c)
	default:
		var out PRF
		var wsum float64
		for i := range k {
			w := 1.0
			if avg == Weighted {
				w = tp[i] + fn[i]
			}
			s := score(tp[i], fp[i], fn[i])
			out.Precision += w * s.Precision
			out.Recall += w * s.Recall
			out.F1 += w * s.F1
			wsum += w
		}
		out.Precision, out.Recall, out.F1 = div(out.Precision, wsum), div(out.Recall, wsum), div(out.F1, wsum)
		return out
	}
}

func div(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// LogLoss is the mean negative log-likelihood of the true classes; proba
// is row-major n×k. Probabilities are clipped to [1e-15, 1-1e-15] and each
// row renormalised, as in scikit-learn 1.2.
func LogLoss(yTrue []int, proba []float64, k int) float64 {
	const eps = 1e-15
	var s float64
	for i, y := range yTrue {
		row := proba[i*k : (i+1)*k]
		var z float64
		for _, p := range row {
			z += clip(p, eps)
		}
		s -= math.Log(clip(row[y], eps) / z)
	}
	return s / float64(len(yTrue))
}

func clip(p, eps float64) float64 { return math.Min(math.Max(p, eps), 1-eps) }

// Argmax returns the index of the largest value of each row of an n×k
// matrix.
func Argmax(proba []float64, k int) []int {
	n := len(proba) / k
	out := make([]int, n)
	for i := range n {
		row := proba[i*k : (i+1)*k]
		best := 0
		for j, p := range row {
			if p > row[best] {
				best = j
			}
		}
		out[i] = best
	}
	return out
}

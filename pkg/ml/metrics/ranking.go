package metrics

import (
	"math"
	"sort"
)

// ROCAUC is the area under the ROC curve for binary labels (1 positive)
// and scores; ties count one half. It is NaN when one class is absent.
func ROCAUC(yTrue []int, score []float64) float64 {
	idx := order(score)
	var npos, nneg float64
	for _, y := range yTrue {
		if y == 1 {
			npos++
		} else {
			nneg++
		}
	}
	if npos == 0 || nneg == 0 {
		return math.NaN()
	}
	// Mann-Whitney U with average ranks for ties.
	var rankSum float64
	for i := 0; i < len(idx); {
		j := i
		for j < len(idx) && score[idx[j]] == score[idx[i]] {
			j++
		}
		avg := float64(i+j+1) / 2 // ranks i+1..j
		for _, r := range idx[i:j] {
			if yTrue[r] == 1 {
				rankSum += avg
			}
		}
		i = j
	}
	return (rankSum - npos*(npos+1)/2) / (npos * nneg)
}

// ROCAUCOvR is the macro average of one-vs-rest ROC AUC over k classes;
// proba is row-major n×k. Classes absent from yTrue are skipped.
func ROCAUCOvR(yTrue []int, proba []float64, k int) float64 {
	n := len(yTrue)
	bin := make([]int, n)
	col := make([]float64, n)
	var s float64
	var m int
	for c := range k {
		for i := range n {
			bin[i] = b2i(yTrue[i] == c)
			col[i] = proba[i*k+c]
		}
		if a := ROCAUC(bin, col); !math.IsNaN(a) {
			s += a
			m++
		}
	}
	if m == 0 {
		return math.NaN()
	}
	return s / float64(m)
}

// AveragePrecision is the area under the precision-recall curve computed
// as scikit-learn's average_precision_score: sum over thresholds of
// (R_n - R_{n-1}) P_n.
func AveragePrecision(yTrue []int, score []float64) float64 {
	idx := order(score)
	var npos float64
	for _, y := range yTrue {
		npos += float64(b2i(y == 1))
	}
	if npos == 0 {
		return math.NaN()
	}
	var tp, fp, ap, prevRecall float64
	for i := len(idx) - 1; i >= 0; {
		j := i
		for j >= 0 && score[idx[j]] == score[idx[i]] {
			if yTrue[idx[j]] == 1 {
				tp++
			} else {
				fp++
			}
			j--
		}
		recall := tp / npos
		ap += (recall - prevRecall) * tp / (tp + fp)
		prevRecall = recall
		i = j
	}
	return ap
}

// order returns the indices sorting score ascending (stable).
func order(score []float64) []int {
	idx := make([]int, len(score))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return score[idx[a]] < score[idx[b]] })
	return idx
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

package evaluator

import (
	"math"
	"sort"

	commonv1 "github.com/bmaas/bmaas/api/bmaas/common/v1"
	evaluatorv1 "github.com/bmaas/bmaas/api/bmaas/evaluator/v1"
	"github.com/bmaas/bmaas/pkg/ml/dataset"
)

// psiDrifted is the usual threshold of a significant population shift.
const psiDrifted = 0.2

// driftOf compares each input column of f with its training statistics:
// mean and std shift, missing rates, the population stability index and a
// Kolmogorov-Smirnov-like gap over the training histogram's bins (or the
// training top categories).
func driftOf(train *commonv1.DatasetStats, f *dataset.Frame, inputs []string) []*evaluatorv1.FeatureDrift {
	byName := map[string]*commonv1.ColumnStats{}
	for _, c := range train.GetColumns() {
		byName[c.Name] = c
	}
	var out []*evaluatorv1.FeatureDrift
	for _, name := range inputs {
		ts, ok := byName[name]
		c, err := f.Col(name)
		if !ok || err != nil {
			continue
		}
		es := dataset.ColumnStats(c, dataset.StatsOptions{})
		d := &evaluatorv1.FeatureDrift{Column: name, Kind: "numeric",
			TrainMean: ts.Mean, EvalMean: es.Mean, TrainStd: ts.Std, EvalStd: es.Std,
			TrainMissingRate: rate(ts.Missing, ts.Count+ts.Missing), EvalMissingRate: rate(es.Missing, es.Count+es.Missing)}
		if ts.Std > 0 {
			d.MeanShift = (es.Mean - ts.Mean) / ts.Std
		}
		var p, q []float64
		if c.Kind == dataset.Categorical {
			d.Kind = "categorical"
			p, q = categoryShares(ts, c)
		} else {
			p, q = binShares(ts.GetHistogram(), c.Num)
		}
		d.Psi, d.Ks = psi(p, q), ks(p, q)
		d.Drifted = d.Psi >= psiDrifted
		out = append(out, d)
	}
	return out
}

func rate(n, total int64) float64 {
	if total == 0 {
		return 0
	}
	return float64(n) / float64(total)
}

// binShares returns the share of the training and the evaluation values
// in each training histogram bin, with two open bins for values below and
// above the training range.
func binShares(h *commonv1.Histogram, xs []float64) (p, q []float64) {
	edges, counts := h.GetEdges(), h.GetCounts()
	if len(edges) < 2 || len(counts) != len(edges)-1 {
		return nil, nil
	}
	p = make([]float64, len(counts)+2)
	for i, n := range counts {
		p[i+1] = float64(n)
	}
	q = make([]float64, len(p))
	last := edges[len(edges)-1]
	for _, x := range xs {
		switch {
		case math.IsNaN(x):
			continue
		case x < edges[0]:
			q[0]++
		case x > last:
			q[len(q)-1]++
		case x == last:
			q[len(q)-2]++
		default:
			q[sort.SearchFloat64s(edges, math.Nextafter(x, math.Inf(1)))]++ // bin i holds [e[i], e[i+1])
		}
	}
	return normalize(p), normalize(q)
}

// categoryShares returns the shares of the training top categories (and of
// every other value) in the training and the evaluation data.
func categoryShares(ts *commonv1.ColumnStats, c *dataset.Column) (p, q []float64) {
	index := map[string]int{}
	var seen int64
	for i, cc := range ts.TopCategories {
		index[cc.Value] = i
		p = append(p, float64(cc.Count))
		seen += cc.Count
	}
	p = append(p, float64(max(ts.Count-seen, 0)))
	q = make([]float64, len(p))
	for r := range c.Len() {
		if c.IsMissing(r) {
			continue
		}
		if i, ok := index[c.String(r)]; ok {
			q[i]++
		} else {
			q[len(q)-1]++
		}
	}
	return normalize(p), normalize(q)
}

func normalize(xs []float64) []float64 {
	var s float64
	for _, x := range xs {
		s += x
	}
	if s == 0 {
		return xs
	}
	for i := range xs {
		xs[i] /= s
	}
	return xs
}

// psi is Σ (q-p) ln(q/p) with shares floored at 1e-4 so that empty bins
// give a large but finite index.
func psi(p, q []float64) float64 {
	const eps = 1e-4
	var s float64
	for i := range p {
		a, b := math.Max(p[i], eps), math.Max(q[i], eps)
		s += (b - a) * math.Log(b/a)
	}
	return s
}

// ks is the largest gap between the two cumulative shares.
func ks(p, q []float64) float64 {
	var cp, cq, gap float64
	for i := range p {
		cp, cq = cp+p[i], cq+q[i]
		gap = math.Max(gap, math.Abs(cp-cq))
	}
	return gap
}

// Package drift compares a column of new data with the training
// statistics a model version keeps (commonv1.ColumnStats: a histogram for
// numeric columns, the top categories for categorical ones).
//
// The test is chosen as Evidently chooses it by default: a numeric column
// takes the two-sample Kolmogorov-Smirnov test (drifted when p < 0.05)
// when the training data had at most 1,000 values and the Wasserstein
// distance normed by the training standard deviation (drifted at 0.1 or
// more) above; a categorical column takes the chi-squared test (p < 0.05)
// and the Jensen-Shannon distance (0.1 or more) alike. The population
// stability index is computed alongside. The training side is its
// histogram, read as a piecewise uniform distribution, since the samples
// themselves are not kept.
package drift

import (
	"math"
	"sort"

	"gonum.org/v1/gonum/stat/distuv"

	commonv1 "github.com/bmaas/bmaas/api/bmaas/common/v1"
)

// Thresholds of the default tests.
const (
	LargeReference  = 1000
	PValueThreshold = 0.05
	DistanceDrifted = 0.1
	PSIDrifted      = 0.2
)

// Test names.
const (
	TestKS            = "ks"
	TestWasserstein   = "wasserstein"
	TestChiSquare     = "chisquare"
	TestJensenShannon = "jensenshannon"
)

// Result is one column's drift.
type Result struct {
	Kind    string // numeric or categorical
	Test    string
	Score   float64 // the test's statistic
	PValue  float64 // ks and chisquare; 1 otherwise
	Drifted bool
	PSI     float64
	Count   int
	Mean    float64 // of the new numeric values
}

// Numeric compares xs (NaN are missing and skipped) with ref.
func Numeric(ref *commonv1.ColumnStats, xs []float64) Result {
	r := Result{Kind: "numeric", PValue: 1}
	cur := make([]float64, 0, len(xs))
	var sum float64
	for _, x := range xs {
		if !math.IsNaN(x) {
			cur = append(cur, x)
			sum += x
		}
	}
	r.Count = len(cur)
	h := ref.GetHistogram()
	if len(cur) == 0 || len(h.GetEdges()) < 2 || len(h.GetCounts()) != len(h.GetEdges())-1 {
		return r
	}
	r.Mean = sum / float64(len(cur))
	p, q := BinShares(h, cur)
	r.PSI = PSI(p, q)
	if ref.GetCount() <= LargeReference {
		// Over the training bins: both sides binned alike, so values that
		// repeat (measurements rounded to a unit) do not read as a gap
		// against the smooth histogram.
		r.Test = TestKS
		d := MaxGap(p, q)
		r.Score, r.PValue = d, ksPValue(d, float64(ref.GetCount()), float64(len(cur)))
		r.Drifted = r.PValue < PValueThreshold
		return r
	}
	r.Test = TestWasserstein
	sort.Float64s(cur)
	w := newHistCDF(h).wasserstein(cur)
	if ref.GetStd() > 0 {
		w /= ref.GetStd()
	}
	r.Score = w
	r.Drifted = w >= DistanceDrifted
	return r
}

// Categorical compares values (missing ones already left out) with ref's
// top categories; values the training data did not have fall in one
// "other" category beside the training values that were not in its top.
func Categorical(ref *commonv1.ColumnStats, values []string) Result {
	r := Result{Kind: "categorical", PValue: 1, Count: len(values)}
	if len(values) == 0 || ref.GetCount() == 0 {
		return r
	}
	p, counts := CategoryShares(ref, values)
	q := make([]float64, len(counts))
	for i, c := range counts {
		q[i] = c / float64(len(values))
	}
	r.PSI = PSI(p, q)
	if ref.GetCount() <= LargeReference {
		// Expected counts from the training shares with half a count added
		// to each category (Jeffreys' smoothing), so that one value the
		// training data lacked is not by itself a drift.
		r.Test = TestChiSquare
		var chi float64
		df := -1
		n, k := float64(ref.GetCount()), float64(len(p))
		for i := range p {
			if p[i] == 0 && counts[i] == 0 {
				continue
			}
			df++
			e := (p[i]*n + 0.5) / (n + 0.5*k) * float64(len(values))
			chi += (counts[i] - e) * (counts[i] - e) / e
		}
		r.Score = chi
		if df > 0 {
			r.PValue = distuv.ChiSquared{K: float64(df)}.Survival(chi)
		}
		r.Drifted = r.PValue < PValueThreshold
		return r
	}
	r.Test = TestJensenShannon
	r.Score = jensenShannon(p, q)
	r.Drifted = r.Score >= DistanceDrifted
	return r
}

// CategoryShares returns the training shares of ref's top categories and
// of everything else, and the counts of values in the same categories.
func CategoryShares(ref *commonv1.ColumnStats, values []string) (p, counts []float64) {
	index := make(map[string]int, len(ref.GetTopCategories()))
	var seen int64
	for i, c := range ref.GetTopCategories() {
		index[c.Value] = i
		p = append(p, float64(c.Count))
		seen += c.Count
	}
	p = append(p, float64(max(ref.GetCount()-seen, 0)))
	counts = make([]float64, len(p))
	for _, v := range values {
		if i, ok := index[v]; ok {
			counts[i]++
		} else {
			counts[len(counts)-1]++
		}
	}
	return Normalize(p), counts
}

// BinShares returns the share of the training and the new values (sorted
// or not; NaN skipped) in each training histogram bin, with two open bins
// for values below and above the training range.
func BinShares(h *commonv1.Histogram, xs []float64) (p, q []float64) {
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
	return Normalize(p), Normalize(q)
}

// Normalize scales xs in place to sum to 1 (all zero stays all zero).
func Normalize(xs []float64) []float64 {
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

// PSI is Σ (q-p) ln(q/p) with shares floored at 1e-4 so that empty bins
// give a large but finite index.
func PSI(p, q []float64) float64 {
	const eps = 1e-4
	var s float64
	for i := range p {
		a, b := math.Max(p[i], eps), math.Max(q[i], eps)
		s += (b - a) * math.Log(b/a)
	}
	return s
}

// MaxGap is the largest gap between two cumulative shares over the same
// bins.
func MaxGap(p, q []float64) float64 {
	var cp, cq, gap float64
	for i := range p {
		cp, cq = cp+p[i], cq+q[i]
		gap = math.Max(gap, math.Abs(cp-cq))
	}
	return gap
}

// jensenShannon is the Jensen-Shannon distance (the square root of the
// divergence, natural logarithm), as scipy computes it.
func jensenShannon(p, q []float64) float64 {
	var d float64
	for i := range p {
		m := (p[i] + q[i]) / 2
		if p[i] > 0 {
			d += p[i] * math.Log(p[i]/m) / 2
		}
		if q[i] > 0 {
			d += q[i] * math.Log(q[i]/m) / 2
		}
	}
	return math.Sqrt(math.Max(d, 0))
}

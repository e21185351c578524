package drift

import (
	"math"
	"sort"

	commonv1 "github.com/bmaas/bmaas/api/bmaas/common/v1"
)

// histCDF is the cumulative distribution of a histogram read as uniform
// within each bin: linear between the edges, 0 below, 1 above.
type histCDF struct {
	edges []float64
	cum   []float64 // cum[i] = F(edges[i])
}

func newHistCDF(h *commonv1.Histogram) histCDF {
	edges, counts := h.GetEdges(), h.GetCounts()
	c := histCDF{edges: edges, cum: make([]float64, len(edges))}
	var total float64
	for _, n := range counts {
		total += float64(n)
	}
	var run float64
	for i, n := range counts {
		run += float64(n)
		if total > 0 {
			c.cum[i+1] = run / total
		}
	}
	return c
}

// at is F(x).
func (c histCDF) at(x float64) float64 {
	e := c.edges
	switch {
	case x <= e[0]:
		return 0
	case x >= e[len(e)-1]:
		return 1
	}
	i := sort.SearchFloat64s(e, x) // e[i-1] < x <= e[i]
	lo, hi := e[i-1], e[i]
	if hi == lo {
		return c.cum[i]
	}
	return c.cum[i-1] + (c.cum[i]-c.cum[i-1])*(x-lo)/(hi-lo)
}

// wasserstein is ∫ |F(x) - G(x)| dx over the breakpoints of both
// distributions (the edges and the sorted samples); between two of them G
// is constant and F linear, so each piece integrates exactly.
func (c histCDF) wasserstein(sorted []float64) float64 {
	pts := make([]float64, 0, len(c.edges)+len(sorted))
	pts = append(pts, c.edges...)
	pts = append(pts, sorted...)
	sort.Float64s(pts)
	m := float64(len(sorted))
	var w float64
	k := 0 // samples <= the piece's start
	for i := 0; i+1 < len(pts); i++ {
		a, b := pts[i], pts[i+1]
		for k < len(sorted) && sorted[k] <= a {
			k++
		}
		if b <= a {
			continue
		}
		g := float64(k) / m
		fa, fb := c.at(a)-g, c.at(b)-g
		w += absIntegral(fa, fb, b-a)
	}
	return w
}

// absIntegral is ∫ |f| over a piece of length l where f goes linearly
// from fa to fb.
func absIntegral(fa, fb, l float64) float64 {
	if fa*fb >= 0 {
		return math.Abs(fa+fb) / 2 * l
	}
	t := fa / (fa - fb) // where f crosses zero, as a share of l
	return (math.Abs(fa)*t + math.Abs(fb)*(1-t)) / 2 * l
}

// ksPValue is the asymptotic p-value of a two-sample Kolmogorov-Smirnov
// statistic d for samples of sizes n and m (Numerical Recipes' form of
// the Kolmogorov distribution, with its small-sample correction).
func ksPValue(d, n, m float64) float64 {
	if n <= 0 || m <= 0 {
		return 1
	}
	ne := math.Sqrt(n * m / (n + m))
	lambda := (ne + 0.12 + 0.11/ne) * d
	if lambda < 0.2 {
		return 1
	}
	var sum, sign float64 = 0, 1
	for j := 1.0; j <= 100; j++ {
		term := sign * math.Exp(-2*j*j*lambda*lambda)
		sum += term
		if math.Abs(term) < 1e-12 {
			break
		}
		sign = -sign
	}
	return math.Min(math.Max(2*sum, 0), 1)
}

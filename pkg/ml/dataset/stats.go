package dataset

import (
	"math"
	"sort"

	commonv1 "github.com/bmaas/bmaas/api/bmaas/common/v1"
)

// StatsOptions control the statistics of Profile and Frame.Stats.
type StatsOptions struct {
	// HistogramBins is the maximum number of histogram bins (default 32).
	HistogramBins int
	// TopCategories is how many of the most frequent categories to report
	// (default 20).
	TopCategories int
	// MaxCategories bounds the distinct values tracked per categorical
	// column (default 100000); beyond it, Distinct and the category counts
	// cover the first MaxCategories values seen.
	MaxCategories int
	// Kinds forces column kinds, as in ReadOptions.
	Kinds map[string]Kind
}

func (o StatsOptions) withDefaults() StatsOptions {
	if o.HistogramBins <= 0 {
		o.HistogramBins = 32
	}
	if o.TopCategories <= 0 {
		o.TopCategories = 20
	}
	if o.MaxCategories <= 0 {
		o.MaxCategories = 100000
	}
	return o
}

// numAcc accumulates numeric statistics in one pass (Welford).
type numAcc struct {
	count, missing int64
	n              int64 // finite values
	mean, m2       float64
	min, max       float64
	hist           *streamHist
}

func newNumAcc(bins int) *numAcc {
	return &numAcc{min: math.Inf(1), max: math.Inf(-1), hist: newStreamHist(bins)}
}

func (a *numAcc) add(x float64) {
	if math.IsNaN(x) {
		a.missing++
		return
	}
	a.count++
	a.min = math.Min(a.min, x)
	a.max = math.Max(a.max, x)
	if math.IsInf(x, 0) {
		return
	}
	a.n++
	d := x - a.mean
	a.mean += d / float64(a.n)
	a.m2 += d * (x - a.mean)
	a.hist.add(x)
}

func (a *numAcc) stats(name string) *commonv1.ColumnStats {
	cs := &commonv1.ColumnStats{Name: name, Kind: commonv1.ValueKind_VALUE_KIND_NUMERIC, Count: a.count, Missing: a.missing}
	if a.count > 0 {
		cs.Min, cs.Max = a.min, a.max
	}
	if a.n > 0 {
		cs.Mean = a.mean
	}
	if a.n > 1 {
		cs.Std = math.Sqrt(a.m2 / float64(a.n-1))
	}
	if edges, counts := a.hist.result(); counts != nil {
		cs.Histogram = &commonv1.Histogram{Edges: edges, Counts: counts}
	}
	return cs
}

// categoricalStats builds the stats of a categorical column from its
// per-value counts.
func categoricalStats(name string, counts map[string]int64, count, missing int64, top int) *commonv1.ColumnStats {
	cs := &commonv1.ColumnStats{Name: name, Kind: commonv1.ValueKind_VALUE_KIND_CATEGORICAL, Count: count, Missing: missing, Distinct: int64(len(counts))}
	cats := make([]*commonv1.CategoryCount, 0, len(counts))
	for v, c := range counts {
		cats = append(cats, &commonv1.CategoryCount{Value: v, Count: c})
	}
	sort.Slice(cats, func(i, j int) bool {
		if cats[i].Count != cats[j].Count {
			return cats[i].Count > cats[j].Count
		}
		return cats[i].Value < cats[j].Value
	})
	if len(cats) > top {
		cats = cats[:top]
	}
	cs.TopCategories = cats
	return cs
}

// ColumnStats computes the statistics of one column.
func ColumnStats(c *Column, opts StatsOptions) *commonv1.ColumnStats {
	opts = opts.withDefaults()
	if c.Kind == Categorical {
		perCode := make([]int64, len(c.Levels))
		var missing, count int64
		for _, code := range c.Codes {
			if code < 0 {
				missing++
			} else {
				perCode[code]++
				count++
			}
		}
		counts := make(map[string]int64, len(c.Levels))
		for code, n := range perCode {
			if n > 0 {
				counts[c.Levels[code]] = n
			}
		}
		return categoricalStats(c.Name, counts, count, missing, opts.TopCategories)
	}
	a := newNumAcc(opts.HistogramBins)
	for _, x := range c.Num {
		a.add(x)
	}
	return a.stats(c.Name)
}

// Stats computes the statistics of every column of the frame. They equal
// what Profile returns for the same CSV.
func (f *Frame) Stats(opts StatsOptions) *commonv1.DatasetStats {
	ds := &commonv1.DatasetStats{Rows: int64(f.rows)}
	for _, c := range f.cols {
		ds.Columns = append(ds.Columns, ColumnStats(c, opts))
	}
	return ds
}

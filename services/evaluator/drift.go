package evaluator

import (
	commonv1 "github.com/bmaas/bmaas/api/bmaas/common/v1"
	evaluatorv1 "github.com/bmaas/bmaas/api/bmaas/evaluator/v1"
	"github.com/bmaas/bmaas/pkg/ml/dataset"
	"github.com/bmaas/bmaas/pkg/ml/drift"
)

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
			p, q = drift.BinShares(ts.GetHistogram(), c.Num)
		}
		d.Psi, d.Ks = drift.PSI(p, q), drift.MaxGap(p, q)
		d.Drifted = d.Psi >= drift.PSIDrifted
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

// categoryShares returns the shares of the training top categories (and of
// every other value) in the training and the evaluation data.
func categoryShares(ts *commonv1.ColumnStats, c *dataset.Column) (p, q []float64) {
	values := make([]string, 0, c.Len())
	for r := range c.Len() {
		if !c.IsMissing(r) {
			values = append(values, c.String(r))
		}
	}
	p, q = drift.CategoryShares(ts, values)
	return p, drift.Normalize(q)
}

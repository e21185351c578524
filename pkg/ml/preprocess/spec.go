package preprocess

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"

	"github.com/bmaas/bmaas/pkg/ml/dataset"
)

// ErrSpec: an invalid pipeline specification.
var ErrSpec = errors.New("invalid preprocessing")

// Spec describes the pipeline to fit.
type Spec struct {
	// Features are the input columns, in order (column selection).
	Features []string
	// Impute is "none" (or ""), "mean", "median", "most_frequent" or
	// "constant" for numeric columns. Categorical columns use the most
	// frequent category unless Impute is "none" or "constant".
	Impute string
	// ImputeValue is the constant for numeric columns with "constant".
	ImputeValue float64
	// ImputeCategory is the constant category with "constant" (default
	// "missing"); it becomes a level of its own.
	ImputeCategory string
	// Scale is "none" (or ""), "standard" (zero mean, unit variance with
	// ddof=0) or "minmax" (to [0, 1]); it applies to numeric columns.
	Scale string
	// PCAComponents keeps that many principal components (0: no PCA)...
	PCAComponents int
	// ...or PCAVariance keeps the fewest components explaining more than
	// that fraction of the variance (0 < f < 1).
	PCAVariance float64
}

// Validate checks the enumerations and ranges.
func (s *Spec) Validate() error {
	if !slices.Contains([]string{"", "none", "mean", "median", "most_frequent", "constant"}, s.Impute) {
		return fmt.Errorf("%w: impute %q: want none, mean, median, most_frequent or constant", ErrSpec, s.Impute)
	}
	if !slices.Contains([]string{"", "none", "standard", "minmax"}, s.Scale) {
		return fmt.Errorf("%w: scale %q: want none, standard or minmax", ErrSpec, s.Scale)
	}
	if s.PCAComponents < 0 {
		return fmt.Errorf("%w: pca components %d < 0", ErrSpec, s.PCAComponents)
	}
	if s.PCAVariance < 0 || s.PCAVariance >= 1 || math.IsNaN(s.PCAVariance) {
		return fmt.Errorf("%w: pca variance %v out of [0, 1)", ErrSpec, s.PCAVariance)
	}
	if s.PCAComponents > 0 && s.PCAVariance > 0 {
		return fmt.Errorf("%w: set pca components or pca variance, not both", ErrSpec)
	}
	if s.Impute == "constant" && (math.IsNaN(s.ImputeValue) || math.IsInf(s.ImputeValue, 0)) {
		return fmt.Errorf("%w: impute value %v is not finite", ErrSpec, s.ImputeValue)
	}
	return nil
}

// Fit fits the pipeline on the training frame and returns it with the
// transformed training features (rows × NumFeatures).
func Fit(f *dataset.Frame, spec Spec) (*Pipeline, []float64, error) {
	if err := spec.Validate(); err != nil {
		return nil, nil, err
	}
	if len(spec.Features) == 0 {
		return nil, nil, fmt.Errorf("%w: no feature columns", ErrSpec)
	}
	p := &Pipeline{}
	for _, name := range spec.Features {
		c, err := f.Col(name)
		if err != nil {
			return nil, nil, err
		}
		in := Input{Name: name, Categorical: c.Kind == dataset.Categorical}
		if in.Categorical {
			in.Levels = slices.Clone(c.Levels)
			if spec.Impute == "constant" {
				cat := spec.ImputeCategory
				if cat == "" {
					cat = "missing"
				}
				if !slices.Contains(in.Levels, cat) {
					in.Levels = append(in.Levels, cat)
				}
			}
		}
		p.Inputs = append(p.Inputs, in)
	}
	p.Prepare()
	var ws Workspace
	raw := make([]float64, f.NumRows()*len(p.Inputs))
	if err := p.EncodeFrame(f, raw, &ws); err != nil {
		return nil, nil, err
	}
	rows, cols := f.NumRows(), len(p.Inputs)
	if imp := fitImpute(raw, rows, p.Inputs, spec); imp != nil {
		p.Steps = append(p.Steps, imp)
	}
	x, err := p.Apply(raw, rows, &ws, 1)
	if err != nil {
		return nil, nil, err
	}
	x = slices.Clone(x)
	names := make([]string, cols)
	for j, in := range p.Inputs {
		names[j] = in.Name
	}
	if spec.Scale == "standard" || spec.Scale == "minmax" {
		s := fitScale(x, rows, p.Inputs, spec.Scale)
		s.Apply(x, rows, cols, x)
		p.Steps = append(p.Steps, s)
	}
	if oh, ohNames := fitOneHot(p.Inputs); oh != nil {
		out := make([]float64, rows*oh.OutCols(cols))
		oh.Apply(x, rows, cols, out)
		x, cols, names = out, oh.OutCols(cols), ohNames
		p.Steps = append(p.Steps, oh)
	}
	if spec.PCAComponents > 0 || spec.PCAVariance > 0 {
		pca, err := FitPCA(x, rows, cols, spec.PCAComponents, spec.PCAVariance)
		if err != nil {
			return nil, nil, err
		}
		out := make([]float64, rows*pca.K)
		pca.Apply(x, rows, cols, out)
		x, cols = out, pca.K
		names = make([]string, pca.K)
		for k := range names {
			names[k] = fmt.Sprintf("pc%d", k+1)
		}
		p.Steps = append(p.Steps, pca)
	}
	p.Features = names
	return p, x, nil
}

func fitImpute(raw []float64, rows int, inputs []Input, spec Spec) *Impute {
	if spec.Impute == "" || spec.Impute == "none" {
		return nil
	}
	cols := len(inputs)
	imp := &Impute{Fill: make([]float64, cols)}
	vals := make([]float64, 0, rows)
	for j, in := range inputs {
		vals = vals[:0]
		for r := range rows {
			if v := raw[r*cols+j]; !math.IsNaN(v) {
				vals = append(vals, v)
			}
		}
		strategy := spec.Impute
		if in.Categorical && strategy != "constant" {
			strategy = "most_frequent"
		}
		fill := math.NaN()
		switch {
		case strategy == "constant" && in.Categorical:
			fill = float64(in.Code(orDefault(spec.ImputeCategory, "missing")))
		case strategy == "constant":
			fill = spec.ImputeValue
		case len(vals) == 0:
			fill = 0 // an all-missing column: nothing to learn from
		case strategy == "mean":
			var s float64
			for _, v := range vals {
				s += v
			}
			fill = s / float64(len(vals))
		case strategy == "median":
			sort.Float64s(vals)
			n := len(vals)
			fill = vals[n/2]
			if n%2 == 0 {
				fill = (vals[n/2-1] + vals[n/2]) / 2
			}
		case strategy == "most_frequent":
			sort.Float64s(vals)
			best, bestN := vals[0], 0
			for i := 0; i < len(vals); {
				j := i
				for j < len(vals) && vals[j] == vals[i] {
					j++
				}
				if j-i > bestN { // ties: the smallest value, as scikit-learn
					best, bestN = vals[i], j-i
				}
				i = j
			}
			fill = best
		}
		imp.Fill[j] = fill
	}
	return imp
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

func fitScale(x []float64, rows int, inputs []Input, kind string) *Scale {
	cols := len(inputs)
	s := &Scale{Offset: make([]float64, cols), Mul: make([]float64, cols)}
	for j, in := range inputs {
		s.Mul[j] = 1
		if in.Categorical || rows == 0 {
			continue
		}
		if kind == "standard" {
			var m float64
			for r := range rows {
				m += x[r*cols+j]
			}
			m /= float64(rows)
			var v float64
			for r := range rows {
				d := x[r*cols+j] - m
				v += d * d
			}
			sd := math.Sqrt(v / float64(rows))
			s.Offset[j] = m
			if sd > 0 {
				s.Mul[j] = 1 / sd
			}
			continue
		}
		lo, hi := math.Inf(1), math.Inf(-1)
		for r := range rows {
			lo, hi = math.Min(lo, x[r*cols+j]), math.Max(hi, x[r*cols+j])
		}
		s.Offset[j] = lo
		if hi > lo {
			s.Mul[j] = 1 / (hi - lo)
		}
	}
	return s
}

func fitOneHot(inputs []Input) (*OneHot, []string) {
	oh := &OneHot{Sizes: make([]int, len(inputs))}
	var names []string
	any := false
	for j, in := range inputs {
		if !in.Categorical {
			names = append(names, in.Name)
			continue
		}
		any = true
		oh.Sizes[j] = max(len(in.Levels), 1)
		for _, l := range in.Levels {
			names = append(names, in.Name+"="+l)
		}
		if len(in.Levels) == 0 {
			names = append(names, in.Name+"=")
		}
	}
	if !any {
		return nil, nil
	}
	return oh, names
}

// Package preprocess is the feature-engineering pipeline: column
// selection, imputation, scaling, one-hot encoding and PCA. A Pipeline is
// fitted on training data and then applied unchanged at prediction time;
// applying it allocates nothing once its Workspace has grown.
package preprocess

import (
	"errors"
	"fmt"
	"math"
)

// ErrMissingValue: a missing or infinite value would reach the model (no
// imputation configured for it).
var ErrMissingValue = errors.New("missing or infinite value without imputation")

// Input is one input column of the pipeline.
type Input struct {
	Name        string
	Categorical bool
	// Levels of a categorical column; raw codes index it.
	Levels []string
	index  map[string]int32
}

// Code returns the code of a category, or -1 when unseen.
func (in *Input) Code(level string) int32 {
	if c, ok := in.index[level]; ok {
		return c
	}
	return -1
}

// Prepare builds the lookup tables of categorical inputs. Fit and the
// artifact loader call it; call it after building a Pipeline by hand and
// before sharing it between goroutines.
func (p *Pipeline) Prepare() {
	for j := range p.Inputs {
		in := &p.Inputs[j]
		in.index = make(map[string]int32, len(in.Levels))
		for i, l := range in.Levels {
			if _, dup := in.index[l]; !dup {
				in.index[l] = int32(i)
			}
		}
	}
}

// Step is one fitted transformation of a row-major matrix.
type Step interface {
	// OutCols is the number of columns produced from inCols columns.
	OutCols(inCols int) int
	// Apply transforms rows rows of src (rows × inCols) into dst.
	Apply(src []float64, rows, inCols int, dst []float64)
}

// Pipeline maps raw input rows (one value per Input: numbers, or the
// category code as a float64 with -1 for unseen, NaN for missing) to model
// features. Imputation, if any, is Steps[0]; every non-finite value left
// after it is an error naming the row and the input column.
type Pipeline struct {
	Inputs []Input
	Steps  []Step
	// Features names the output columns.
	Features []string
}

// Workspace holds the buffers of Apply; reuse one per goroutine.
type Workspace struct {
	a, b  []float64
	codes []int32
	vals  []float64
	buf   []byte
}

func grow(s []float64, n int) []float64 {
	if cap(s) < n {
		return make([]float64, n)
	}
	return s[:n]
}

// NumFeatures is the number of output columns.
func (p *Pipeline) NumFeatures() int { return len(p.Features) }

// Apply transforms raw (rows × len(Inputs)) and returns the features
// (rows × NumFeatures), a view into ws valid until its next use. rowBase
// is added to row numbers in errors (pass 1 for 1-based data rows).
func (p *Pipeline) Apply(raw []float64, rows int, ws *Workspace, rowBase int) ([]float64, error) {
	cols := len(p.Inputs)
	if len(raw) < rows*cols {
		return nil, fmt.Errorf("pipeline: %d values for %d rows of %d columns", len(raw), rows, cols)
	}
	src := raw[:rows*cols]
	steps := p.Steps
	if len(steps) > 0 {
		if imp, ok := steps[0].(*Impute); ok {
			ws.a = grow(ws.a, rows*cols)
			imp.Apply(src, rows, cols, ws.a)
			src, steps = ws.a, steps[1:]
		}
	}
	for i, v := range src {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			r, c := i/cols, i%cols
			return nil, fmt.Errorf("row %d, column %q: %w", r+rowBase, p.Inputs[c].Name, ErrMissingValue)
		}
	}
	for _, s := range steps {
		out := s.OutCols(cols)
		var dst []float64
		if len(src) > 0 && len(ws.a) > 0 && &src[0] == &ws.a[0] {
			ws.b = grow(ws.b, rows*out)
			dst = ws.b
		} else {
			ws.a = grow(ws.a, rows*out)
			dst = ws.a
		}
		s.Apply(src, rows, cols, dst)
		src, cols = dst, out
	}
	return src, nil
}

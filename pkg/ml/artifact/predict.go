package artifact

import (
	"fmt"

	"github.com/bmaas/bmaas/pkg/ml/dataset"
	"github.com/bmaas/bmaas/pkg/ml/preprocess"
)

// Predictor runs a model; it owns scratch buffers, so use one per
// goroutine. Once the buffers have grown to the largest batch, its
// methods allocate nothing.
type Predictor struct {
	m   *Model
	ws  preprocess.Workspace
	raw []float64
}

// NewPredictor returns a predictor for m.
func (m *Model) NewPredictor() *Predictor { return &Predictor{m: m} }

// PredictFrame predicts every row of f, matching its columns by name to
// the model's inputs (extra columns are ignored), and writes rows ×
// NumOutputs values into out: regression values, or class probabilities.
// Errors name the row and column: a missing column, a non-numeric value in
// a numeric input, a missing value without imputation.
func (p *Predictor) PredictFrame(f *dataset.Frame, out []float64) error {
	rows := f.NumRows()
	need := rows * len(p.m.Pipeline.Inputs)
	if cap(p.raw) < need {
		p.raw = make([]float64, need)
	}
	raw := p.raw[:need]
	if err := p.m.Pipeline.EncodeFrame(f, raw, &p.ws); err != nil {
		return err
	}
	return p.predict(raw, rows, out)
}

// PredictMatrix predicts rows of raw inputs (rows × len(Inputs), in input
// order; categorical inputs as category codes, NaN for missing).
func (p *Predictor) PredictMatrix(x []float64, rows int, out []float64) error {
	cols := len(p.m.Pipeline.Inputs)
	if rows < 0 || len(x) != rows*cols {
		if rows > 0 && len(x)%rows == 0 {
			return fmt.Errorf("%w: %d features per row, the model takes %d (%v)", ErrSignature, len(x)/rows, cols, p.m.Inputs())
		}
		return fmt.Errorf("%w: %d values for %d rows of %d features", ErrSignature, len(x), rows, cols)
	}
	return p.predict(x, rows, out)
}

func (p *Predictor) predict(raw []float64, rows int, out []float64) error {
	if len(out) < rows*p.m.NumOutputs() {
		return fmt.Errorf("predict: output holds %d values, need %d", len(out), rows*p.m.NumOutputs())
	}
	x, err := p.m.Pipeline.Apply(raw, rows, &p.ws, 1)
	if err != nil {
		return err
	}
	p.m.Estimator.Predict(x, rows, out)
	return nil
}

// Classes writes the index of the most probable class of each row of
// probabilities (rows × k) into dst.
func Classes(proba []float64, k int, dst []int) {
	for r := range dst {
		row := proba[r*k : (r+1)*k]
		best := 0
		for j, v := range row {
			if v > row[best] {
				best = j
			}
		}
		dst[r] = best
	}
}

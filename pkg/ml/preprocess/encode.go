package preprocess

import (
	"errors"
	"fmt"
	"math"
	"strconv"

	"github.com/bmaas/bmaas/pkg/ml/dataset"
)

// ErrSchema: the data does not match the pipeline's inputs.
var ErrSchema = errors.New("input does not match the model signature")

// EncodeFrame writes the raw input matrix (rows × len(Inputs)) of f into
// dst, matching columns by name: numbers as they are, categories as codes
// (-1 when unseen), NaN for missing. Extra columns of f are ignored. It
// allocates nothing once ws has grown.
func (p *Pipeline) EncodeFrame(f *dataset.Frame, dst []float64, ws *Workspace) error {
	rows, cols := f.NumRows(), len(p.Inputs)
	if len(dst) < rows*cols {
		return fmt.Errorf("encode: destination holds %d values, need %d", len(dst), rows*cols)
	}
	for j := range p.Inputs {
		in := &p.Inputs[j]
		ci := f.ColIndex(in.Name)
		if ci < 0 {
			return fmt.Errorf("column %q: %w: column missing", in.Name, ErrSchema)
		}
		c := f.Columns()[ci]
		switch {
		case !in.Categorical && c.Kind == dataset.Numeric:
			for r, v := range c.Num {
				dst[r*cols+j] = v
			}
		case !in.Categorical:
			// Categorical data in a numeric input: every level must parse.
			vals := ws.vals[:0]
			for _, l := range c.Levels {
				v, ok := dataset.ParseNumber(l)
				if !ok {
					v = math.NaN() // marks a non-numeric level
				}
				vals = append(vals, v)
			}
			ws.vals = vals
			for r, code := range c.Codes {
				v := math.NaN()
				if code >= 0 {
					if v = vals[code]; math.IsNaN(v) {
						return fmt.Errorf("row %d, column %q: %w: %q", r+1, in.Name, dataset.ErrNotNumeric, c.Levels[code])
					}
				}
				dst[r*cols+j] = v
			}
		case c.Kind == dataset.Categorical:
			codes := ws.codes[:0]
			for _, l := range c.Levels {
				codes = append(codes, in.Code(l))
			}
			ws.codes = codes
			for r, code := range c.Codes {
				v := math.NaN()
				if code >= 0 {
					v = float64(codes[code])
				}
				dst[r*cols+j] = v
			}
		default:
			// Numbers in a categorical input: look up their text.
			for r, v := range c.Num {
				if math.IsNaN(v) {
					dst[r*cols+j] = v
					continue
				}
				ws.buf = strconv.AppendFloat(ws.buf[:0], v, 'g', -1, 64)
				dst[r*cols+j] = float64(in.codeBytes(ws.buf))
			}
		}
	}
	return nil
}

func (in *Input) codeBytes(b []byte) int32 {
	if c, ok := in.index[string(b)]; ok {
		return c
	}
	return -1
}

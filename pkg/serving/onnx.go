package serving

import (
	"fmt"
	"math"
	"sync"

	"github.com/advancedclimatesystems/gonnx"
	"gorgonia.org/tensor"
)

// onnxModel runs an ONNX graph of one FP32 input [rows, features] and one
// output [rows, k] through gonnx (pure Go); softmax turns each row of
// logits into probabilities.
type onnxModel struct {
	mu       sync.Mutex
	g        *gonnx.Model
	in, out  string
	features int
	k        int
	softmax  bool
}

func loadONNX(path string, opts Options) (*Model, error) {
	g, err := gonnx.NewModelFromFile(path)
	if err != nil {
		return nil, fmt.Errorf("load onnx model %s: %w", path, err)
	}
	ins, outs := g.InputNames(), g.OutputNames()
	if len(ins) != 1 || len(outs) != 1 {
		return nil, fmt.Errorf("%w: onnx model %s has %d inputs and %d outputs, want one of each", ErrFormat, path, len(ins), len(outs))
	}
	o := &onnxModel{g: g, in: ins[0], out: outs[0]}
	inShape, outShape := g.InputShapes()[o.in], g.OutputShape(o.out)
	if len(inShape) != 2 || len(outShape) != 2 || inShape[1].IsDynamic || outShape[1].IsDynamic {
		return nil, fmt.Errorf("%w: onnx model %s must map [rows, features] to [rows, k]", ErrFormat, path)
	}
	o.features, o.k = int(inShape[1].Size), int(outShape[1].Size)
	m := &Model{Platform: "onnxruntime_onnx", be: o, outFP32: true,
		Inputs:  []TensorSpec{{Name: o.in, Datatype: FP32, Shape: []int64{-1, int64(o.features)}}},
		Outputs: []TensorSpec{{Name: o.out, Datatype: FP32, Shape: []int64{-1, int64(o.k)}}}}
	if len(opts.Classes) > 0 {
		if len(opts.Classes) != o.k {
			return nil, fmt.Errorf("%w: onnx model %s answers %d values a row, its signature names %d classes",
				ErrFormat, path, o.k, len(opts.Classes))
		}
		o.softmax, m.labels, m.outFP32 = opts.Logits, opts.Classes, false
		m.Outputs = []TensorSpec{
			{Name: "predictions", Datatype: BYTES, Shape: []int64{-1}},
			{Name: "probabilities", Datatype: FP64, Shape: []int64{-1, int64(o.k)}},
		}
	}
	return m, nil
}

func (o *onnxModel) Features() int { return o.features }
func (o *onnxModel) Outputs() int  { return o.k }
func (o *onnxModel) close()        {}

func (o *onnxModel) Predict(x []float64, rows int, out []float64) error {
	in := make([]float32, len(x))
	for i, v := range x {
		in[i] = float32(v)
	}
	t := tensor.New(tensor.WithShape(rows, o.features), tensor.WithBacking(in))
	o.mu.Lock()
	res, err := o.g.Run(gonnx.Tensors{o.in: t})
	o.mu.Unlock()
	if err != nil {
		return fmt.Errorf("onnx run: %w", err)
	}
	r, ok := res[o.out]
	if !ok {
		return fmt.Errorf("onnx run: no output %q", o.out)
	}
	switch d := r.Data().(type) {
	case []float32:
		if len(d) != rows*o.k {
			return fmt.Errorf("onnx run: %d output values for %d rows of %d", len(d), rows, o.k)
		}
		for i, v := range d {
			out[i] = float64(v)
		}
	case []float64:
		copy(out, d)
	default:
		return fmt.Errorf("onnx run: output of type %T", d)
	}
	if o.softmax {
		softmaxRows(out[:rows*o.k], o.k)
	}
	return nil
}

// softmaxRows replaces each row of k logits by its probabilities.
func softmaxRows(x []float64, k int) {
	for r := 0; r+k <= len(x); r += k {
		row := x[r : r+k]
		hi := row[0]
		for _, v := range row[1:] {
			hi = max(hi, v)
		}
		sum := 0.0
		for i, v := range row {
			row[i] = math.Exp(v - hi)
			sum += row[i]
		}
		for i := range row {
			row[i] /= sum
		}
	}
}

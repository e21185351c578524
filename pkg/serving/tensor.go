package serving

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sync"

	"github.com/bmaas/bmaas/api/inference"
	"github.com/bmaas/bmaas/pkg/apierr"
)

// MaxRows bounds the rows of one request.
const MaxRows = 1 << 20

var errClosed = fmt.Errorf("model unloaded: %w", apierr.ErrUnavailable)

var floatPool = sync.Pool{New: func() any { return new([]float64) }}

// Infer validates req against the model's signature, predicts and builds
// the response. Errors name the tensor or field at fault.
func (m *Model) Infer(ctx context.Context, req *inference.ModelInferRequest) (*inference.ModelInferResponse, error) {
	if !m.Ready() {
		return nil, errClosed
	}
	if err := m.checkVersion(req.ModelVersion); err != nil {
		return nil, err
	}
	rows, err := m.checkRequest(req)
	if err != nil {
		return nil, err
	}
	f, k := m.be.Features(), m.be.Outputs()
	xp, op := floatPool.Get().(*[]float64), floatPool.Get().(*[]float64)
	defer floatPool.Put(xp)
	defer floatPool.Put(op)
	x, out := grow(*xp, rows*f), grow(*op, rows*k)
	*xp, *op = x, out
	raw := len(req.RawInputContents) > 0
	if err := decodeInput(req, x, raw); err != nil {
		return nil, err
	}
	if err := m.batcher.predict(ctx, x, rows, out); err != nil {
		if errors.Is(err, errClosed) || ctx.Err() != nil {
			return nil, err
		}
		return nil, apierr.Invalid("inputs[0]", "%v", err)
	}
	return m.response(req, rows, out, raw), nil
}

// checkRequest checks the one input's name, datatype, shape and the
// requested outputs, and returns the rows.
func (m *Model) checkRequest(req *inference.ModelInferRequest) (int, error) {
	spec := m.Inputs[0]
	switch len(req.Inputs) {
	case 0:
		return 0, apierr.Invalid("inputs", "missing input %q %v %s", spec.Name, spec.Shape, spec.Datatype)
	case 1:
	default:
		return 0, apierr.Invalid("inputs", "the model takes one input %q, got %d", spec.Name, len(req.Inputs))
	}
	in := req.Inputs[0]
	if in.Name != spec.Name {
		return 0, apierr.Invalid("inputs[0].name", "unknown input %q: the model takes %q", in.Name, spec.Name)
	}
	if in.Datatype != FP32 && in.Datatype != FP64 {
		return 0, apierr.Invalid("inputs[0].datatype", "input %q must be FP32 or FP64, got %q", in.Name, in.Datatype)
	}
	f := m.be.Features()
	if len(in.Shape) != 2 || in.Shape[1] != int64(f) || in.Shape[0] < 1 || in.Shape[0] > MaxRows {
		return 0, apierr.Invalid("inputs[0].shape", "input %q must be shaped [rows, %d] with 1 to %d rows, got %v", in.Name, f, MaxRows, in.Shape)
	}
	for i, o := range req.Outputs {
		if !m.hasOutput(o.Name) {
			return 0, apierr.Invalid(fmt.Sprintf("outputs[%d].name", i), "unknown output %q", o.Name)
		}
	}
	rows := int(in.Shape[0])
	n := rows * f
	if len(req.RawInputContents) > 0 {
		size := 8
		if in.Datatype == FP32 {
			size = 4
		}
		if len(req.RawInputContents) != 1 || len(req.RawInputContents[0]) != n*size {
			return 0, apierr.Invalid("raw_input_contents", "input %q needs %d bytes (%d %s values)", in.Name, n*size, n, in.Datatype)
		}
		if in.Contents != nil {
			return 0, apierr.Invalid("inputs[0].contents", "set with raw_input_contents")
		}
		return rows, nil
	}
	got := len(in.GetContents().GetFp64Contents())
	if in.Datatype == FP32 {
		got = len(in.GetContents().GetFp32Contents())
	}
	if got != n {
		return 0, apierr.Invalid("inputs[0].contents", "input %q shaped %v needs %d %s values, got %d", in.Name, in.Shape, n, in.Datatype, got)
	}
	return rows, nil
}

func (m *Model) hasOutput(name string) bool {
	for _, o := range m.Outputs {
		if o.Name == name {
			return true
		}
	}
	return false
}

func decodeInput(req *inference.ModelInferRequest, x []float64, raw bool) error {
	in := req.Inputs[0]
	switch {
	case raw && in.Datatype == FP64:
		b := req.RawInputContents[0]
		for i := range x {
			x[i] = math.Float64frombits(binary.LittleEndian.Uint64(b[8*i:]))
		}
	case raw:
		b := req.RawInputContents[0]
		for i := range x {
			x[i] = float64(math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:])))
		}
	case in.Datatype == FP64:
		copy(x, in.Contents.Fp64Contents)
	default:
		for i, v := range in.Contents.Fp32Contents {
			x[i] = float64(v)
		}
	}
	return nil
}

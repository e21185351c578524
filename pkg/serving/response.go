package serving

import (
	"encoding/binary"
	"math"

	"github.com/bmaas/bmaas/api/inference"
	"github.com/bmaas/bmaas/pkg/ml/artifact"
)

// response builds the outputs the request asked for (all when none):
// raw contents when the request was raw, typed contents otherwise.
func (m *Model) response(req *inference.ModelInferRequest, rows int, out []float64, raw bool) *inference.ModelInferResponse {
	resp := &inference.ModelInferResponse{ModelName: m.Name, ModelVersion: m.VersionString(), Id: req.Id,
		Outputs: make([]*inference.ModelInferResponse_InferOutputTensor, 0, len(m.Outputs))}
	k := m.be.Outputs()
	for _, spec := range m.Outputs {
		if !wanted(req, spec.Name) {
			continue
		}
		t := &inference.ModelInferResponse_InferOutputTensor{Name: spec.Name, Datatype: spec.Datatype}
		var data any
		switch {
		case spec.Name == "predictions" && m.labels != nil:
			t.Shape = []int64{int64(rows)}
			data = m.classLabels(out, rows, k)
		case spec.Name == "predictions":
			t.Shape = []int64{int64(rows)}
			data = out[:rows]
		default:
			t.Shape = []int64{int64(rows), int64(k)}
			data = out[:rows*k]
		}
		if raw {
			resp.RawOutputContents = append(resp.RawOutputContents, encodeRaw(data, spec.Datatype))
		} else {
			t.Contents = contents(data, spec.Datatype)
		}
		resp.Outputs = append(resp.Outputs, t)
	}
	return resp
}

func wanted(req *inference.ModelInferRequest, name string) bool {
	if len(req.Outputs) == 0 {
		return true
	}
	for _, o := range req.Outputs {
		if o.Name == name {
			return true
		}
	}
	return false
}

// classLabels picks each row's most probable class, as
// artifact.Classes does for `bmaas ml predict`.
func (m *Model) classLabels(proba []float64, rows, k int) [][]byte {
	idx := make([]int, rows)
	artifact.Classes(proba[:rows*k], k, idx)
	labels := make([][]byte, rows)
	for r, c := range idx {
		labels[r] = []byte(m.labels[c])
	}
	return labels
}

func contents(data any, datatype string) *inference.InferTensorContents {
	switch d := data.(type) {
	case [][]byte:
		return &inference.InferTensorContents{BytesContents: d}
	case []float64:
		if datatype == FP32 {
			f := make([]float32, len(d))
			for i, v := range d {
				f[i] = float32(v)
			}
			return &inference.InferTensorContents{Fp32Contents: f}
		}
		c := make([]float64, len(d))
		copy(c, d)
		return &inference.InferTensorContents{Fp64Contents: c}
	}
	return nil
}

// encodeRaw writes data little-endian; BYTES elements get a 4-byte length
// prefix each, as the protocol's raw encoding has it.
func encodeRaw(data any, datatype string) []byte {
	switch d := data.(type) {
	case [][]byte:
		n := 0
		for _, s := range d {
			n += 4 + len(s)
		}
		b := make([]byte, 0, n)
		for _, s := range d {
			b = binary.LittleEndian.AppendUint32(b, uint32(len(s)))
			b = append(b, s...)
		}
		return b
	case []float64:
		if datatype == FP32 {
			b := make([]byte, 4*len(d))
			for i, v := range d {
				binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(float32(v)))
			}
			return b
		}
		b := make([]byte, 8*len(d))
		for i, v := range d {
			binary.LittleEndian.PutUint64(b[8*i:], math.Float64bits(v))
		}
		return b
	}
	return nil
}

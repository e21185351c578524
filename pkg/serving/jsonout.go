package serving

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"strconv"

	"github.com/bmaas/bmaas/api/inference"
)

// AppendInferResponse appends the v2 REST JSON of resp to b: model_name,
// model_version, id, parameters and outputs with name, datatype, shape
// and flat data (raw output contents are decoded by datatype).
func AppendInferResponse(b []byte, resp *inference.ModelInferResponse) []byte {
	b = append(b, `{"model_name":`...)
	b = appendString(b, resp.ModelName)
	b = append(b, `,"model_version":`...)
	b = appendString(b, resp.ModelVersion)
	if resp.Id != "" {
		b = append(b, `,"id":`...)
		b = appendString(b, resp.Id)
	}
	if len(resp.Parameters) > 0 {
		b = append(b, `,"parameters":`...)
		b = appendParams(b, resp.Parameters)
	}
	b = append(b, `,"outputs":[`...)
	for i, o := range resp.Outputs {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"name":`...)
		b = appendString(b, o.Name)
		b = append(b, `,"datatype":`...)
		b = appendString(b, o.Datatype)
		b = append(b, `,"shape":[`...)
		for j, d := range o.Shape {
			if j > 0 {
				b = append(b, ',')
			}
			b = strconv.AppendInt(b, d, 10)
		}
		b = append(b, `],"data":`...)
		c := o.Contents
		if i < len(resp.RawOutputContents) {
			c = rawToContents(o.Datatype, resp.RawOutputContents[i])
		}
		b = appendData(b, c)
		b = append(b, '}')
	}
	return append(b, "]}"...)
}

func appendData(b []byte, c *inference.InferTensorContents) []byte {
	b = append(b, '[')
	n := len(b)
	comma := func() {
		if len(b) > n {
			b = append(b, ',')
		}
	}
	for _, v := range c.GetFp64Contents() {
		comma()
		b = appendFloat(b, v, 64)
	}
	for _, v := range c.GetFp32Contents() {
		comma()
		b = appendFloat(b, float64(v), 32)
	}
	for _, v := range c.GetBytesContents() {
		comma()
		b = appendString(b, string(v))
	}
	for _, v := range c.GetIntContents() {
		comma()
		b = strconv.AppendInt(b, int64(v), 10)
	}
	for _, v := range c.GetInt64Contents() {
		comma()
		b = strconv.AppendInt(b, v, 10)
	}
	for _, v := range c.GetUintContents() {
		comma()
		b = strconv.AppendUint(b, uint64(v), 10)
	}
	for _, v := range c.GetUint64Contents() {
		comma()
		b = strconv.AppendUint(b, v, 10)
	}
	for _, v := range c.GetBoolContents() {
		comma()
		b = strconv.AppendBool(b, v)
	}
	return append(b, ']')
}

// appendFloat writes the shortest decimal that reads back to the same
// value; NaN and infinities, which JSON lacks, become null.
func appendFloat(b []byte, v float64, bits int) []byte {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return append(b, "null"...)
	}
	return strconv.AppendFloat(b, v, 'g', -1, bits)
}

func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s)
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

func appendParams(b []byte, ps map[string]*inference.InferParameter) []byte {
	m := make(map[string]any, len(ps))
	for k, p := range ps {
		switch x := p.ParameterChoice.(type) {
		case *inference.InferParameter_BoolParam:
			m[k] = x.BoolParam
		case *inference.InferParameter_Int64Param:
			m[k] = x.Int64Param
		case *inference.InferParameter_StringParam:
			m[k] = x.StringParam
		}
	}
	q, _ := json.Marshal(m)
	return append(b, q...)
}

// rawToContents decodes raw little-endian contents of a datatype.
func rawToContents(datatype string, raw []byte) *inference.InferTensorContents {
	c := &inference.InferTensorContents{}
	switch datatype {
	case FP64:
		for i := 0; i+8 <= len(raw); i += 8 {
			c.Fp64Contents = append(c.Fp64Contents, math.Float64frombits(binary.LittleEndian.Uint64(raw[i:])))
		}
	case FP32:
		for i := 0; i+4 <= len(raw); i += 4 {
			c.Fp32Contents = append(c.Fp32Contents, math.Float32frombits(binary.LittleEndian.Uint32(raw[i:])))
		}
	case BYTES:
		for i := 0; i+4 <= len(raw); {
			n := int(binary.LittleEndian.Uint32(raw[i:]))
			if i+4+n > len(raw) {
				break
			}
			c.BytesContents = append(c.BytesContents, raw[i+4:i+4+n])
			i += 4 + n
		}
	}
	return c
}

package serving

import (
	"encoding/json"
	"math"
	"strconv"

	"github.com/bmaas/bmaas/api/inference"
)

// AppendInferResponse appends the v2 REST JSON of resp to b: model_name,
// model_version, id, parameters and outputs with name, datatype, shape
// and flat data (raw output contents are decoded by datatype).
func AppendInferResponse(b []byte, resp *inference.ModelInferResponse) []byte {
	b, _ = AppendInferResponseBinary(b, resp, nil)
	return b
}

// AppendInferResponseBinary appends resp to b as AppendInferResponse
// does, except that the outputs binary reports true for (see
// BinaryOutputs) go in the binary data extension's form: the output's
// "parameters" say its "binary_data_size" and its raw bytes follow the
// JSON, in the order of the outputs. headerLen is the length of the JSON
// (the Inference-Header-Content-Length to send when it is less than the
// bytes appended).
func AppendInferResponseBinary(b []byte, resp *inference.ModelInferResponse, binary func(name string) bool) (out []byte, headerLen int) {
	start := len(b)
	b = append(b, `{"model_name":`...)
	b = appendString(b, resp.ModelName)
	b = append(b, `,"model_version":`...)
	b = appendString(b, resp.ModelVersion)
	if resp.Id != "" {
		b = append(b, `,"id":`...)
		b = appendString(b, resp.Id)
	}
	if len(resp.Parameters) > 0 {
		b = append(b, `,"parameters":{`...)
		b = appendParams(b, resp.Parameters)
		b = append(b, '}')
	}
	b = append(b, `,"outputs":[`...)
	anyBinary := false
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
		b = append(b, ']')
		if binary != nil && binary(o.Name) {
			anyBinary = true
			n := RawSize(o.Datatype, o.Contents)
			if i < len(resp.RawOutputContents) {
				n = len(resp.RawOutputContents[i])
			}
			b = append(b, `,"parameters":{"binary_data_size":`...)
			b = strconv.AppendInt(b, int64(n), 10)
			b = append(b, "}}"...)
			continue
		}
		b = append(b, `,"data":`...)
		c := o.Contents
		if i < len(resp.RawOutputContents) {
			// Undecodable raw contents (FP16, a short buffer) answer
			// no data rather than wrong numbers.
			c, _ = RawContents(o.Datatype, resp.RawOutputContents[i])
		}
		b = appendData(b, c)
		b = append(b, '}')
	}
	b = append(b, "]}"...)
	headerLen = len(b) - start
	if !anyBinary {
		return b, headerLen
	}
	for i, o := range resp.Outputs {
		if !binary(o.Name) {
			continue
		}
		if i < len(resp.RawOutputContents) {
			b = append(b, resp.RawOutputContents[i]...)
		} else {
			b = AppendRaw(b, o.Datatype, o.Contents)
		}
	}
	return b, headerLen
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

// appendParams appends the members of a JSON object of parameters,
// without its braces, so that a caller may add its own.
func appendParams(b []byte, ps map[string]*inference.InferParameter) []byte {
	first := true
	for k, p := range ps {
		if !first {
			b = append(b, ',')
		}
		first = false
		b = appendString(b, k)
		b = append(b, ':')
		switch x := p.ParameterChoice.(type) {
		case *inference.InferParameter_BoolParam:
			b = strconv.AppendBool(b, x.BoolParam)
		case *inference.InferParameter_Int64Param:
			b = strconv.AppendInt(b, x.Int64Param, 10)
		case *inference.InferParameter_StringParam:
			b = appendString(b, x.StringParam)
		default:
			b = append(b, "null"...)
		}
	}
	return b
}

package serving

import (
	"strconv"

	"github.com/bmaas/bmaas/api/inference"
)

// AppendInferRequest appends req to b as a v2 REST request body: the
// JSON (id, parameters, inputs, outputs) and, when binaryMin > 0, the
// inputs of binaryMin bytes or more (and FP16 and BF16 inputs, which JSON
// cannot carry) as binary data after it (the binary data extension),
// with binary_data_output asked of the server then. Raw
// input contents below binaryMin are written as JSON numbers. headerLen
// is the length of the JSON: the Inference-Header-Content-Length to send
// when it is less than the bytes appended.
func AppendInferRequest(b []byte, req *inference.ModelInferRequest, binaryMin int) (out []byte, headerLen int) {
	start := len(b)
	isBinary := func(i int, in *inference.ModelInferRequest_InferInputTensor) (bool, int) {
		size := 0
		if i < len(req.RawInputContents) {
			size = len(req.RawInputContents[i])
		} else {
			size = RawSize(in.Datatype, in.Contents)
		}
		if in.Datatype == "FP16" || in.Datatype == "BF16" {
			// No JSON form: binary whatever the size.
			return true, size
		}
		return binaryMin > 0 && size >= binaryMin && ElementSize(in.Datatype) >= 0, size
	}
	anyBinary := false
	for i, in := range req.Inputs {
		if bin, _ := isBinary(i, in); bin {
			anyBinary = true
		}
	}
	b = append(b, '{')
	if req.Id != "" {
		b = append(b, `"id":`...)
		b = appendString(b, req.Id)
		b = append(b, ',')
	}
	_, asked := req.Parameters[ParamBinaryDataOutput]
	if len(req.Parameters) > 0 || (anyBinary && !asked) {
		b = append(b, `"parameters":{`...)
		b = appendParams(b, req.Parameters)
		if anyBinary && !asked {
			if len(req.Parameters) > 0 {
				b = append(b, ',')
			}
			b = append(b, `"binary_data_output":true`...)
		}
		b = append(b, "},"...)
	}
	b = append(b, `"inputs":[`...)
	for i, in := range req.Inputs {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"name":`...)
		b = appendString(b, in.Name)
		b = append(b, `,"datatype":`...)
		b = appendString(b, in.Datatype)
		b = append(b, `,"shape":[`...)
		for j, d := range in.Shape {
			if j > 0 {
				b = append(b, ',')
			}
			b = strconv.AppendInt(b, d, 10)
		}
		b = append(b, ']')
		bin, size := isBinary(i, in)
		params := in.Parameters
		if _, ok := params[ParamBinaryDataSize]; ok {
			// A size the client sent describes its own body, not this one.
			params = without(params, ParamBinaryDataSize)
		}
		if len(params) > 0 || bin {
			b = append(b, `,"parameters":{`...)
			b = appendParams(b, params)
			if bin {
				if len(params) > 0 {
					b = append(b, ',')
				}
				b = append(b, `"binary_data_size":`...)
				b = strconv.AppendInt(b, int64(size), 10)
			}
			b = append(b, '}')
		}
		if !bin {
			b = append(b, `,"data":`...)
			c := in.Contents
			if i < len(req.RawInputContents) {
				c, _ = RawContents(in.Datatype, req.RawInputContents[i])
			}
			b = appendData(b, c)
		}
		b = append(b, '}')
	}
	b = append(b, ']')
	if len(req.Outputs) > 0 {
		b = append(b, `,"outputs":[`...)
		for i, o := range req.Outputs {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"name":`...)
			b = appendString(b, o.Name)
			if len(o.Parameters) > 0 {
				b = append(b, `,"parameters":{`...)
				b = appendParams(b, o.Parameters)
				b = append(b, '}')
			}
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	b = append(b, '}')
	headerLen = len(b) - start
	if !anyBinary {
		return b, headerLen
	}
	for i, in := range req.Inputs {
		if bin, _ := isBinary(i, in); !bin {
			continue
		}
		if i < len(req.RawInputContents) {
			b = append(b, req.RawInputContents[i]...)
		} else {
			b = AppendRaw(b, in.Datatype, in.Contents)
		}
	}
	return b, headerLen
}

// without is ps less one key, ps left as it was.
func without(ps map[string]*inference.InferParameter, key string) map[string]*inference.InferParameter {
	out := make(map[string]*inference.InferParameter, len(ps))
	for k, v := range ps {
		if k != key {
			out[k] = v
		}
	}
	return out
}

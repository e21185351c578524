package serving

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"

	"github.com/bmaas/bmaas/api/inference"
	"github.com/bmaas/bmaas/pkg/apierr"
)

// jsonRequest is the v2 REST inference request.
type jsonRequest struct {
	ID         string         `json:"id"`
	Parameters map[string]any `json:"parameters"`
	Inputs     []struct {
		Name       string          `json:"name"`
		Shape      []int64         `json:"shape"`
		Datatype   string          `json:"datatype"`
		Parameters map[string]any  `json:"parameters"`
		Data       json.RawMessage `json:"data"`
	} `json:"inputs"`
	Outputs []struct {
		Name       string         `json:"name"`
		Parameters map[string]any `json:"parameters"`
	} `json:"outputs"`
}

// DecodeInferRequest parses a v2 REST inference request body (the
// protocol's JSON: id, parameters, inputs with name, shape, datatype and
// data flat or nested, outputs) into req. Errors name the field.
func DecodeInferRequest(body []byte, req *inference.ModelInferRequest) error {
	return DecodeInferRequestBinary(body, len(body), req)
}

// DecodeInferRequestBinary parses a request body whose first headerLen
// bytes are the JSON and the rest the binary data of the inputs that say
// their parameters.binary_data_size (the binary data extension). When an
// input is binary, every input's data goes to req.RawInputContents (as
// gRPC requires), and binary_data_size leaves the inputs' parameters.
// Binary inputs alias body. Sizes that do not add up are errors naming
// the input's binary_data_size.
func DecodeInferRequestBinary(body []byte, headerLen int, req *inference.ModelInferRequest) error {
	if headerLen < 0 || headerLen > len(body) {
		return apierr.Invalid(HeaderContentLength, "%d is not within the body's %d bytes", headerLen, len(body))
	}
	bin := body[headerLen:]
	var jr jsonRequest
	dec := json.NewDecoder(bytes.NewReader(body[:headerLen]))
	if err := dec.Decode(&jr); err != nil {
		return apierr.Invalid("body", "not a v2 inference request: %v", err)
	}
	if dec.More() {
		return apierr.Invalid("body", "trailing data after the request")
	}
	params, err := parameters("parameters", jr.Parameters)
	if err != nil {
		return err
	}
	req.Id, req.Parameters = jr.ID, params
	if len(jr.Inputs) == 0 {
		return apierr.Invalid("inputs", "at least one input is required")
	}
	var raws [][]byte
	off := 0
	for i, in := range jr.Inputs {
		field := fmt.Sprintf("inputs[%d]", i)
		size, binary := in.Parameters[ParamBinaryDataSize]
		switch {
		case in.Name == "":
			return apierr.Invalid(field+".name", "required")
		case in.Datatype == "":
			return apierr.Invalid(field+".datatype", "required")
		case in.Shape == nil:
			return apierr.Invalid(field+".shape", "required")
		case len(in.Data) == 0 && !binary:
			return apierr.Invalid(field+".data", "required")
		case len(in.Data) > 0 && binary && string(in.Data) != "null":
			return apierr.Invalid(field+".data", "set with parameters.%s: the data is in the binary part", ParamBinaryDataSize)
		}
		t := &inference.ModelInferRequest_InferInputTensor{Name: in.Name, Datatype: in.Datatype, Shape: in.Shape}
		if binary {
			sizeField := field + ".parameters." + ParamBinaryDataSize
			n, ok := size.(float64)
			if !ok || n != math.Trunc(n) || n < 0 {
				return apierr.Invalid(sizeField, "must be a non-negative integer, got %v", size)
			}
			if int(n) > len(bin)-off {
				return apierr.Invalid(sizeField, "%d bytes, but %d bytes of binary data are left after the JSON header", int(n), len(bin)-off)
			}
			raw := bin[off : off+int(n) : off+int(n)]
			off += int(n)
			if err := CheckRaw(in.Datatype, in.Shape, raw); err != nil {
				return apierr.Invalid(sizeField, "input %q: %v", in.Name, err)
			}
			if raws == nil {
				raws = make([][]byte, i, len(jr.Inputs))
			}
			raws = append(raws, raw)
			delete(in.Parameters, ParamBinaryDataSize)
		} else {
			c, err := decodeData(field+".data", in.Datatype, in.Data)
			if err != nil {
				return err
			}
			t.Contents = c
			if raws != nil {
				raws = append(raws, nil)
			}
		}
		if t.Parameters, err = parameters(field+".parameters", in.Parameters); err != nil {
			return err
		}
		req.Inputs = append(req.Inputs, t)
	}
	if off != len(bin) {
		return apierr.Invalid("body", "%d bytes of binary data follow the JSON header, the inputs' %s add up to %d", len(bin), ParamBinaryDataSize, off)
	}
	if raws != nil {
		// gRPC's raw_input_contents holds every input or none.
		for i, t := range req.Inputs {
			if t.Contents != nil {
				raws[i] = AppendRaw(nil, t.Datatype, t.Contents)
				t.Contents = nil
			}
		}
		req.RawInputContents = raws
	}
	for i, o := range jr.Outputs {
		field := fmt.Sprintf("outputs[%d]", i)
		if o.Name == "" {
			return apierr.Invalid(field+".name", "required")
		}
		p, err := parameters(field+".parameters", o.Parameters)
		if err != nil {
			return err
		}
		req.Outputs = append(req.Outputs, &inference.ModelInferRequest_InferRequestedOutputTensor{Name: o.Name, Parameters: p})
	}
	return nil
}

func parameters(field string, m map[string]any) (map[string]*inference.InferParameter, error) {
	if len(m) == 0 {
		return nil, nil
	}
	out := make(map[string]*inference.InferParameter, len(m))
	for k, v := range m {
		switch x := v.(type) {
		case bool:
			out[k] = &inference.InferParameter{ParameterChoice: &inference.InferParameter_BoolParam{BoolParam: x}}
		case string:
			out[k] = &inference.InferParameter{ParameterChoice: &inference.InferParameter_StringParam{StringParam: x}}
		case float64:
			if x != math.Trunc(x) || math.Abs(x) > 1<<53 {
				return nil, apierr.Invalid(field+"."+k, "a number parameter must be an integer")
			}
			out[k] = &inference.InferParameter{ParameterChoice: &inference.InferParameter_Int64Param{Int64Param: int64(x)}}
		default:
			return nil, apierr.Invalid(field+"."+k, "must be a boolean, an integer or a string")
		}
	}
	return out, nil
}

// decodeData flattens the (possibly nested) data array of a tensor into
// the contents field of its datatype.
func decodeData(field, datatype string, raw json.RawMessage) (*inference.InferTensorContents, error) {
	c := &inference.InferTensorContents{}
	switch datatype {
	case FP32, FP64:
		var err error
		n := 0
		err = scanNumbers(raw, func(tok []byte) error {
			bits := 64
			if datatype == FP32 {
				bits = 32
			}
			v, err := strconv.ParseFloat(string(tok), bits)
			if err != nil {
				return fmt.Errorf("element %d: %q is not a number", n, tok)
			}
			if datatype == FP32 {
				c.Fp32Contents = append(c.Fp32Contents, float32(v))
			} else {
				c.Fp64Contents = append(c.Fp64Contents, v)
			}
			n++
			return nil
		})
		if err != nil {
			return nil, apierr.Invalid(field, "%s data: %v", datatype, err)
		}
		return c, nil
	case "INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64":
		n := 0
		err := scanNumbers(raw, func(tok []byte) error {
			if v, err := strconv.ParseInt(string(tok), 10, 64); err == nil && datatype != "UINT64" {
				n++
				return appendInt(c, datatype, float64(v), v, 0)
			}
			if v, err := strconv.ParseUint(string(tok), 10, 64); err == nil {
				n++
				return appendInt(c, datatype, float64(v), int64(v), v)
			}
			v, err := strconv.ParseFloat(string(tok), 64)
			if err != nil {
				return fmt.Errorf("element %d: %q is not a number", n, tok)
			}
			n++
			return appendInt(c, datatype, v, int64(v), uint64(v))
		})
		if err != nil {
			return nil, apierr.Invalid(field, "%s data: %v", datatype, err)
		}
		return c, nil
	case "BOOL", BYTES:
	default:
		return nil, apierr.Invalid(field, "datatype %q is not supported in JSON", datatype)
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, apierr.Invalid(field, "%v", err)
	}
	var bad error
	var walk func(any)
	walk = func(x any) {
		if bad != nil {
			return
		}
		switch e := x.(type) {
		case []any:
			for _, y := range e {
				walk(y)
			}
		case bool:
			if datatype != "BOOL" {
				bad = fmt.Errorf("%s data holds a boolean", datatype)
			}
			c.BoolContents = append(c.BoolContents, e)
		case string:
			if datatype != BYTES {
				bad = fmt.Errorf("%s data holds a string", datatype)
			}
			c.BytesContents = append(c.BytesContents, []byte(e))
		case float64:
			bad = fmt.Errorf("%s data holds a number", datatype)
		default:
			bad = fmt.Errorf("%s data holds %v", datatype, x)
		}
	}
	walk(v)
	if bad != nil {
		return nil, apierr.Invalid(field, "%v", bad)
	}
	return c, nil
}

// appendInt appends an integer element (v as a float, i and u exact
// where they are) to the contents of its datatype.
func appendInt(c *inference.InferTensorContents, datatype string, v float64, i int64, u uint64) error {
	if v != math.Trunc(v) {
		return fmt.Errorf("%s data holds %v", datatype, v)
	}
	if u == 0 && i > 0 {
		u = uint64(i)
	}
	switch datatype {
	case "INT8", "INT16", "INT32":
		c.IntContents = append(c.IntContents, int32(i))
	case "INT64":
		c.Int64Contents = append(c.Int64Contents, i)
	case "UINT8", "UINT16", "UINT32", "UINT64":
		if v < 0 {
			return fmt.Errorf("%s data holds %v", datatype, v)
		}
		if datatype == "UINT64" {
			c.Uint64Contents = append(c.Uint64Contents, u)
		} else {
			c.UintContents = append(c.UintContents, uint32(u))
		}
	default:
		return fmt.Errorf("%s data holds a number", datatype)
	}
	return nil
}

// scanNumbers calls fn on each number of a nested JSON array of numbers,
// and checks the brackets balance.
func scanNumbers(b []byte, fn func([]byte) error) error {
	depth, i := 0, 0
	for i < len(b) {
		switch ch := b[i]; {
		case ch == '[':
			depth++
			i++
		case ch == ']':
			if depth--; depth < 0 {
				return fmt.Errorf("unbalanced ]")
			}
			i++
		case ch == ',' || ch == ' ' || ch == '\n' || ch == '\t' || ch == '\r':
			i++
		case ch == '-' || (ch >= '0' && ch <= '9'):
			j := i
			for j < len(b) && (b[j] == '-' || b[j] == '+' || b[j] == '.' || b[j] == 'e' || b[j] == 'E' || (b[j] >= '0' && b[j] <= '9')) {
				j++
			}
			if err := fn(b[i:j]); err != nil {
				return err
			}
			i = j
		default:
			return fmt.Errorf("unexpected %q: data must be an array of numbers", ch)
		}
	}
	if depth != 0 {
		return fmt.Errorf("unbalanced [")
	}
	return nil
}

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
	var jr jsonRequest
	dec := json.NewDecoder(bytes.NewReader(body))
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
	for i, in := range jr.Inputs {
		field := fmt.Sprintf("inputs[%d]", i)
		switch {
		case in.Name == "":
			return apierr.Invalid(field+".name", "required")
		case in.Datatype == "":
			return apierr.Invalid(field+".datatype", "required")
		case in.Shape == nil:
			return apierr.Invalid(field+".shape", "required")
		case len(in.Data) == 0:
			return apierr.Invalid(field+".data", "required")
		}
		p, err := parameters(field+".parameters", in.Parameters)
		if err != nil {
			return err
		}
		c, err := decodeData(field+".data", in.Datatype, in.Data)
		if err != nil {
			return err
		}
		req.Inputs = append(req.Inputs, &inference.ModelInferRequest_InferInputTensor{Name: in.Name, Datatype: in.Datatype,
			Shape: in.Shape, Parameters: p, Contents: c})
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
	case "BOOL", BYTES, "INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64":
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
			bad = appendInt(c, datatype, e)
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

func appendInt(c *inference.InferTensorContents, datatype string, v float64) error {
	if v != math.Trunc(v) {
		return fmt.Errorf("%s data holds %v", datatype, v)
	}
	switch datatype {
	case "INT8", "INT16", "INT32":
		c.IntContents = append(c.IntContents, int32(v))
	case "INT64":
		c.Int64Contents = append(c.Int64Contents, int64(v))
	case "UINT8", "UINT16", "UINT32":
		c.UintContents = append(c.UintContents, uint32(v))
	case "UINT64":
		c.Uint64Contents = append(c.Uint64Contents, uint64(v))
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

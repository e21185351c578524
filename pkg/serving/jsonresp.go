package serving

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"

	"github.com/bmaas/bmaas/api/inference"
)

// jsonResponse is the v2 REST inference response.
type jsonResponse struct {
	ModelName    string          `json:"model_name"`
	ModelVersion json.RawMessage `json:"model_version"`
	ID           string          `json:"id"`
	Parameters   map[string]any  `json:"parameters"`
	Outputs      []struct {
		Name       string          `json:"name"`
		Shape      []int64         `json:"shape"`
		Datatype   string          `json:"datatype"`
		Parameters map[string]any  `json:"parameters"`
		Data       json.RawMessage `json:"data"`
	} `json:"outputs"`
}

// DecodeInferResponse parses a v2 REST inference response (a server's
// answer) into resp: the first headerLen bytes of body are the JSON, the
// rest the binary data of the outputs that say their binary_data_size.
// When an output is binary, every output's data goes to
// resp.RawOutputContents (as gRPC requires); binary outputs alias body.
// Parameters JSON's types cannot carry in KServe v2's (a fraction, an
// object) are left out.
func DecodeInferResponse(body []byte, headerLen int, resp *inference.ModelInferResponse) error {
	if headerLen < 0 || headerLen > len(body) {
		return fmt.Errorf("%s %d is not within the body's %d bytes", HeaderContentLength, headerLen, len(body))
	}
	bin := body[headerLen:]
	var jr jsonResponse
	if err := json.Unmarshal(body[:headerLen], &jr); err != nil {
		return fmt.Errorf("not a v2 inference response: %v", err)
	}
	resp.ModelName, resp.Id, resp.Parameters = jr.ModelName, jr.ID, looseParameters(jr.Parameters)
	resp.ModelVersion = string(bytes.Trim(jr.ModelVersion, `"`))
	if resp.ModelVersion == "null" {
		resp.ModelVersion = ""
	}
	var raws [][]byte
	off := 0
	for i, o := range jr.Outputs {
		field := fmt.Sprintf("outputs[%d]", i)
		t := &inference.ModelInferResponse_InferOutputTensor{Name: o.Name, Datatype: o.Datatype, Shape: o.Shape}
		if size, ok := o.Parameters[ParamBinaryDataSize]; ok {
			n, ok := size.(float64)
			if !ok || n != math.Trunc(n) || n < 0 || int(n) > len(bin)-off {
				return fmt.Errorf("%s.parameters.%s: %v bytes, %d bytes of binary data are left", field, ParamBinaryDataSize, size, len(bin)-off)
			}
			raw := bin[off : off+int(n) : off+int(n)]
			off += int(n)
			if raws == nil {
				raws = make([][]byte, i, len(jr.Outputs))
			}
			raws = append(raws, raw)
			delete(o.Parameters, ParamBinaryDataSize)
		} else if len(o.Data) == 0 || string(o.Data) == "null" {
			t.Contents = &inference.InferTensorContents{}
			if raws != nil {
				raws = append(raws, nil)
			}
		} else {
			c, err := decodeData(field+".data", o.Datatype, o.Data)
			if err != nil {
				return err
			}
			t.Contents = c
			if raws != nil {
				raws = append(raws, nil)
			}
		}
		t.Parameters = looseParameters(o.Parameters)
		resp.Outputs = append(resp.Outputs, t)
	}
	if off != len(bin) {
		return fmt.Errorf("%d bytes of binary data follow the JSON header, the outputs' %s add up to %d", len(bin), ParamBinaryDataSize, off)
	}
	if raws != nil {
		for i, t := range resp.Outputs {
			if t.Contents != nil {
				raws[i] = AppendRaw(nil, t.Datatype, t.Contents)
				t.Contents = nil
			}
		}
		resp.RawOutputContents = raws
	}
	return nil
}

// looseParameters converts what KServe v2 parameters can hold (booleans,
// integers, strings) and leaves the rest out.
func looseParameters(m map[string]any) map[string]*inference.InferParameter {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]*inference.InferParameter, len(m))
	for k, v := range m {
		switch x := v.(type) {
		case bool:
			out[k] = &inference.InferParameter{ParameterChoice: &inference.InferParameter_BoolParam{BoolParam: x}}
		case string:
			out[k] = &inference.InferParameter{ParameterChoice: &inference.InferParameter_StringParam{StringParam: x}}
		case float64:
			if x == math.Trunc(x) && math.Abs(x) <= 1<<53 {
				out[k] = &inference.InferParameter{ParameterChoice: &inference.InferParameter_Int64Param{Int64Param: int64(x)}}
			}
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// DecodeModelMetadata parses a v2 REST model metadata answer (name,
// versions, platform, inputs and outputs with name, datatype, shape).
func DecodeModelMetadata(body []byte, md *inference.ModelMetadataResponse) error {
	type tensor struct {
		Name     string  `json:"name"`
		Datatype string  `json:"datatype"`
		Shape    []int64 `json:"shape"`
	}
	var jm struct {
		Name     string            `json:"name"`
		Versions []json.RawMessage `json:"versions"`
		Platform string            `json:"platform"`
		Inputs   []tensor          `json:"inputs"`
		Outputs  []tensor          `json:"outputs"`
	}
	if err := json.Unmarshal(body, &jm); err != nil {
		return fmt.Errorf("not v2 model metadata: %v", err)
	}
	md.Name, md.Platform = jm.Name, jm.Platform
	for _, v := range jm.Versions {
		// A version is a string in the protocol; some servers send numbers.
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			if _, perr := strconv.ParseFloat(string(v), 64); perr != nil {
				return fmt.Errorf("versions: %s is not a version", v)
			}
			s = string(v)
		}
		md.Versions = append(md.Versions, s)
	}
	conv := func(ts []tensor) []*inference.ModelMetadataResponse_TensorMetadata {
		out := make([]*inference.ModelMetadataResponse_TensorMetadata, len(ts))
		for i, t := range ts {
			out[i] = &inference.ModelMetadataResponse_TensorMetadata{Name: t.Name, Datatype: t.Datatype, Shape: t.Shape}
		}
		return out
	}
	md.Inputs, md.Outputs = conv(jm.Inputs), conv(jm.Outputs)
	return nil
}

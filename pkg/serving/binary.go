package serving

import (
	"strconv"

	"github.com/bmaas/bmaas/api/inference"
	"github.com/bmaas/bmaas/pkg/apierr"
)

// The binary tensor data extension of KServe v2 REST (Triton's): a body
// is a JSON header of HeaderContentLength bytes followed by the raw
// little-endian bytes of the tensors whose parameters say their
// binary_data_size, in the order of the tensors.
const (
	// HeaderContentLength is the HTTP header giving the JSON's length.
	HeaderContentLength = "Inference-Header-Content-Length"
	// ParamBinaryDataSize is a tensor's parameter: the bytes of its data
	// in the binary part.
	ParamBinaryDataSize = "binary_data_size"
	// ParamBinaryDataOutput is the request's parameter asking every
	// output as binary data.
	ParamBinaryDataOutput = "binary_data_output"
	// ParamBinaryData is a requested output's parameter asking it (true)
	// or not (false) as binary data, over binary_data_output.
	ParamBinaryData = "binary_data"
)

// HeaderLength parses the Inference-Header-Content-Length of a body of
// bodyLen bytes: bodyLen when the header is absent.
func HeaderLength(value string, bodyLen int) (int, error) {
	if value == "" {
		return bodyLen, nil
	}
	n, err := strconv.Atoi(value)
	if err != nil || n < 0 || n > bodyLen {
		return 0, apierr.Invalid(HeaderContentLength, "%q is not a length within the body's %d bytes", value, bodyLen)
	}
	return n, nil
}

// BinaryOutputs says which outputs of the response to req go as binary
// data: those whose requested output's binary_data is true, and, when
// the request's binary_data_output is true, every output whose requested
// output does not say false. Nil when none does.
func BinaryOutputs(req *inference.ModelInferRequest) func(name string) bool {
	all := req.Parameters[ParamBinaryDataOutput].GetBoolParam()
	var set map[string]bool
	for _, o := range req.Outputs {
		if p, ok := o.Parameters[ParamBinaryData]; ok {
			if set == nil {
				set = map[string]bool{}
			}
			set[o.Name] = p.GetBoolParam()
		}
	}
	if !all {
		any := false
		for _, v := range set {
			any = any || v
		}
		if !any {
			return nil
		}
	}
	return func(name string) bool {
		if v, ok := set[name]; ok {
			return v
		}
		return all
	}
}

package gateway

import (
	"encoding/json"
	"net/http"

	"github.com/bmaas/bmaas/api/inference"
	"github.com/bmaas/bmaas/pkg/apierr"
)

// restPredict answers POST /v1/models/{name}:predict with
// {"instances": [[...], ...]}: rows of the model's input features, sent
// as the FP64 tensor "input"; the answer is {"predictions": [...]} and,
// for classifiers, "probabilities": [[...], ...]. Errors answer as the
// rest of the REST API does (apierr.WriteHTTP).
func (a restAPI) restPredict(w http.ResponseWriter, r *http.Request, name string) {
	bp, err := a.readBody(w, r)
	if err != nil {
		apierr.WriteHTTP(w, err)
		return
	}
	defer bufPool.Put(bp)
	var body struct {
		Instances [][]float64 `json:"instances"`
	}
	if err := json.Unmarshal(*bp, &body); err != nil {
		apierr.WriteHTTP(w, apierr.Invalid("instances", "want an array of rows of numbers: %v", err))
		return
	}
	rows := len(body.Instances)
	if rows == 0 {
		apierr.WriteHTTP(w, apierr.Invalid("instances", "at least one row is required"))
		return
	}
	cols := len(body.Instances[0])
	x := make([]float64, 0, rows*cols)
	for i, row := range body.Instances {
		if len(row) != cols {
			apierr.WriteHTTP(w, apierr.Invalid("instances", "row %d has %d values, row 0 has %d", i, len(row), cols))
			return
		}
		x = append(x, row...)
	}
	// Logged once the request is known to be one (payload_logging).
	pc, r := a.logPayload(r, name, "v1-predict", *bp)
	defer func() { pc.done(err) }()
	resp, err := a.dp.Infer(r.Context(), &inference.ModelInferRequest{ModelName: name,
		Inputs: []*inference.ModelInferRequest_InferInputTensor{{Name: "input", Datatype: "FP64",
			Shape: []int64{int64(rows), int64(cols)}, Contents: &inference.InferTensorContents{Fp64Contents: x}}}})
	if err != nil {
		apierr.WriteHTTP(w, err)
		return
	}
	out := map[string]any{"model_name": resp.ModelName, "model_version": resp.ModelVersion}
	for _, o := range resp.Outputs {
		c := o.GetContents()
		switch {
		case o.Name == "predictions" && len(c.GetBytesContents()) > 0:
			labels := make([]string, len(c.BytesContents))
			for i, b := range c.BytesContents {
				labels[i] = string(b)
			}
			out["predictions"] = labels
		case o.Name == "predictions":
			out["predictions"] = c.GetFp64Contents()
		default:
			key := o.Name
			if _, taken := out["predictions"]; !taken && len(resp.Outputs) == 1 {
				key = "predictions"
			}
			out[key] = reshape(c, o.Shape)
		}
	}
	b, err := json.Marshal(out)
	if err != nil {
		apierr.WriteHTTP(w, err)
		return
	}
	pc.answered(http.StatusOK, b)
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(append(b, '\n'))
}

// reshape turns [rows, k] float contents into rows of k.
func reshape(c *inference.InferTensorContents, shape []int64) [][]float64 {
	vals := c.GetFp64Contents()
	if len(vals) == 0 {
		for _, v := range c.GetFp32Contents() {
			vals = append(vals, float64(v))
		}
	}
	if len(shape) != 2 || shape[1] <= 0 {
		return [][]float64{vals}
	}
	k := int(shape[1])
	out := make([][]float64, 0, len(vals)/k)
	for i := 0; i+k <= len(vals); i += k {
		out = append(out, vals[i:i+k])
	}
	return out
}

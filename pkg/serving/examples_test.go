package serving

import (
	"encoding/csv"
	"os"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/bmaas/bmaas/api/inference"
)

// TestExampleONNXModels: the ONNX models the README uploads
// (examples/models, made by make_models.py) load and classify the breast
// cancer data they were trained on.
func TestExampleONNXModels(t *testing.T) {
	t.Parallel()
	f, err := os.Open("../../examples/datasets/breast_cancer.csv")
	require.NoError(t, err)
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	require.NoError(t, err)
	recs = recs[1:]
	var x []float32
	var y []string
	for _, r := range recs {
		for _, v := range r[:len(r)-1] {
			fv, err := strconv.ParseFloat(v, 32)
			require.NoError(t, err)
			x = append(x, float32(fv))
		}
		y = append(y, r[len(r)-1])
	}
	for _, name := range []string{"logreg-v1.onnx", "logreg-v2.onnx"} {
		m, err := Load("../../examples/models/"+name, Options{Name: "bc", Version: 1, Format: FormatONNX})
		require.NoError(t, err, name)
		require.Equal(t, 30, m.Features())
		resp, err := m.Infer(t.Context(), &inference.ModelInferRequest{ModelName: "bc", Inputs: []*inference.ModelInferRequest_InferInputTensor{{
			Name: "input", Datatype: "FP32", Shape: []int64{int64(len(recs)), 30}, Contents: &inference.InferTensorContents{Fp32Contents: x}}}})
		require.NoError(t, err, name)
		t.Logf("%s outputs: %v", name, outputNames(resp))
		p := resp.Outputs[0].GetContents().GetFp32Contents()
		require.Len(t, p, 2*len(recs))
		right := 0
		for i := range recs {
			require.InDelta(t, 1, p[2*i]+p[2*i+1], 1e-5)
			if (p[2*i+1] > 0.5) == (y[i] == "1") {
				right++
			}
		}
		require.Greater(t, float64(right)/float64(len(recs)), 0.97, name)
		m.Close()
	}
}

func outputNames(r *inference.ModelInferResponse) []string {
	var out []string
	for _, o := range r.Outputs {
		out = append(out, o.Name+":"+o.Datatype)
	}
	return out
}

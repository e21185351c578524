package serving_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/bmaas/bmaas/api/inference"
	"github.com/bmaas/bmaas/pkg/serving"
)

func TestJSONRequestAndResponse(t *testing.T) {
	t.Parallel()
	var req inference.ModelInferRequest
	body := `{"id":"42","parameters":{"n":3},"inputs":[{"name":"input","shape":[2,2],"datatype":"FP64","data":[[1,2.5],[-3e2,4]]}],
		"outputs":[{"name":"predictions"}]}`
	require.NoError(t, serving.DecodeInferRequest([]byte(body), &req))
	require.Equal(t, "42", req.Id)
	require.Equal(t, int64(3), req.Parameters["n"].GetInt64Param())
	require.Equal(t, []float64{1, 2.5, -300, 4}, req.Inputs[0].Contents.Fp64Contents)
	require.Equal(t, "predictions", req.Outputs[0].Name)

	resp := &inference.ModelInferResponse{ModelName: "iris", ModelVersion: "1", Id: "42",
		Outputs: []*inference.ModelInferResponse_InferOutputTensor{
			{Name: "predictions", Datatype: "BYTES", Shape: []int64{2}, Contents: &inference.InferTensorContents{BytesContents: [][]byte{[]byte("a\"b"), []byte("c")}}},
			{Name: "probabilities", Datatype: "FP64", Shape: []int64{2, 1}, Contents: &inference.InferTensorContents{Fp64Contents: []float64{0.1, 1.0 / 3}}},
		}}
	var got map[string]any
	require.NoError(t, json.Unmarshal(serving.AppendInferResponse(nil, resp), &got))
	require.Equal(t, "iris", got["model_name"])
	outs := got["outputs"].([]any)
	require.Equal(t, []any{"a\"b", "c"}, outs[0].(map[string]any)["data"])
	require.Equal(t, []any{0.1, 1.0 / 3}, outs[1].(map[string]any)["data"])

	for _, bad := range []struct{ body, field string }{
		{`{"inputs":[]}`, "inputs"},
		{`{"inputs":[{"shape":[1],"datatype":"FP64","data":[1]}]}`, "inputs[0].name"},
		{`{"inputs":[{"name":"x","shape":[1],"data":[1]}]}`, "inputs[0].datatype"},
		{`{"inputs":[{"name":"x","datatype":"FP64","data":[1]}]}`, "inputs[0].shape"},
		{`{"inputs":[{"name":"x","shape":[1],"datatype":"FP64"}]}`, "inputs[0].data"},
		{`{"inputs":[{"name":"x","shape":[1],"datatype":"FP64","data":["a"]}]}`, "inputs[0].data"},
		{`{"inputs":[{"name":"x","shape":[1],"datatype":"FP64","data":[[1]}]}`, "body"},
		{`{"inputs":[{"name":"x","shape":[1],"datatype":"INT32","data":[1.5]}]}`, "inputs[0].data"},
		{`{"parameters":{"p":[1]},"inputs":[{"name":"x","shape":[1],"datatype":"FP64","data":[1]}]}`, "parameters.p"},
		{`not json`, "body"},
	} {
		var r inference.ModelInferRequest
		err := serving.DecodeInferRequest([]byte(bad.body), &r)
		require.ErrorContains(t, err, bad.field, bad.body)
	}
}

// FuzzDecodeInferRequest: any body either decodes into a request whose
// re-encoded form is valid protobuf, or fails with an error; nothing panics.
func FuzzDecodeInferRequest(f *testing.F) {
	for _, s := range []string{
		`{"inputs":[{"name":"input","shape":[1,4],"datatype":"FP64","data":[5.1,3.5,1.4,0.2]}]}`,
		`{"id":"x","inputs":[{"name":"input","shape":[2,2],"datatype":"FP32","data":[[1,2],[3,4]]}],"outputs":[{"name":"probabilities"}]}`,
		`{"inputs":[{"name":"s","shape":[2],"datatype":"BYTES","data":["a","b"]}]}`,
		`{"inputs":[{"name":"b","shape":[1],"datatype":"BOOL","data":[true]}],"parameters":{"k":"v","n":1,"b":false}}`,
		`{"inputs":[{"name":"i","shape":[3],"datatype":"INT64","data":[1,-2,3]}]}`,
		`{"inputs":[{"name":"i","shape":[1],"datatype":"FP64","data":[1e400]}]}`,
		`[]`, `{}`, `{"inputs":[{"data":[[[[`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var req inference.ModelInferRequest
		if err := serving.DecodeInferRequest(body, &req); err != nil {
			return
		}
		if _, err := proto.Marshal(&req); err != nil {
			t.Fatalf("decoded request does not marshal: %v", err)
		}
	})
}

// TestONNXFromThePyTorchExampleMatchesPyTorch trains the example briefly,
// serves its ONNX export and compares with PyTorch's own outputs.
func TestONNXFromThePyTorchExampleMatchesPyTorch(t *testing.T) {
	t.Parallel()
	py := "/usr/bin/python3"
	if err := exec.Command(py, "-c", "import torch, onnx").Run(); err != nil {
		t.Skip("python3 with torch and onnx is not available")
	}
	data, out := t.TempDir(), t.TempDir()
	csv, err := os.ReadFile(datasets + "iris.csv")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(data, "iris.csv"), csv, 0o644))
	example, err := filepath.Abs("../../examples/pytorch/train.py")
	require.NoError(t, err)
	b, err := exec.CommandContext(t.Context(), py, "testdata/torch_outputs.py", example, data, out).Output()
	require.NoError(t, err)
	var ref struct {
		ONNX string      `json:"onnx"`
		X    [][]float64 `json:"x"`
		Y    [][]float64 `json:"y"`
	}
	require.NoError(t, json.Unmarshal(b, &ref))
	m, err := serving.Load(ref.ONNX, serving.Options{Name: "torch", Version: 1})
	require.NoError(t, err)
	cols := len(ref.X[0])
	x := make([]float32, 0, len(ref.X)*cols)
	for _, r := range ref.X {
		for _, v := range r {
			x = append(x, float32(v))
		}
	}
	resp, err := serving.NewServer(nil, m).ModelInfer(t.Context(), &inference.ModelInferRequest{ModelName: "torch",
		Inputs: []*inference.ModelInferRequest_InferInputTensor{{Name: "input", Datatype: "FP32",
			Shape: []int64{int64(len(ref.X)), int64(cols)}, Contents: &inference.InferTensorContents{Fp32Contents: x}}}})
	require.NoError(t, err)
	got := resp.Outputs[0].Contents.Fp32Contents
	k := len(ref.Y[0])
	require.Equal(t, []int64{int64(len(ref.X)), int64(k)}, resp.Outputs[0].Shape)
	for i, row := range ref.Y {
		for j, v := range row {
			require.InDelta(t, v, float64(got[i*k+j]), 1e-5, "row %d output %d", i, j)
		}
	}
}

package cli

import (
	"bytes"
	"encoding/json"
	"math"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/bmaas/bmaas/api/inference"
)

func TestParseRows(t *testing.T) {
	t.Parallel()
	for _, src := range []string{`{"instances": [[1, 2], [3, null]]}`, `[[1, 2], [3, null]]`} {
		in, err := parseRows("rows.json", strings.NewReader(src))
		require.NoError(t, err)
		x, rows, err := in.matrix(nil, 2)
		require.NoError(t, err)
		require.Equal(t, 2, rows)
		require.Equal(t, []float64{1, 2, 3}, x[:3])
		require.True(t, math.IsNaN(x[3]))
		_, _, err = in.matrix(nil, 3)
		require.ErrorContains(t, err, "the rows have 2 values, the model takes 3 features")
	}
	// CSV: columns by the signature's names, extra columns ignored.
	in, err := parseRows("rows.csv", strings.NewReader("b, a ,target\n1,2,x\n3,,y\n"))
	require.NoError(t, err)
	x, rows, err := in.matrix([]string{"a", "b"}, 2)
	require.NoError(t, err)
	require.Equal(t, 2, rows)
	require.Equal(t, []float64{2, 1}, x[:2])
	require.True(t, math.IsNaN(x[2]))
	require.Equal(t, 3.0, x[3])
	_, _, err = in.matrix([]string{"a", "c"}, 2)
	require.ErrorContains(t, err, `column "c" of the model's signature is missing`)
	_, _, err = in.matrix(nil, 2)
	require.ErrorContains(t, err, "the CSV has 3 columns")
	// Without an extension the first byte decides.
	in, err = parseRows("-", strings.NewReader("a\n1\n"))
	require.NoError(t, err)
	require.Equal(t, []string{"a"}, in.header)

	for _, tc := range []struct{ name, src, msg string }{
		{"r.json", `{"rows": []}`, `no "instances"`},
		{"r.json", `[]`, "no rows"},
		{"r.json", `[[1,2],[3]]`, "row 2 has 1 values"},
		{"r.json", `[["a"]]`, "array of rows of numbers"},
		{"r.csv", "a,b\n", "header row and at least one row"},
	} {
		_, err := parseRows(tc.name, strings.NewReader(tc.src))
		require.ErrorContains(t, err, tc.msg, tc.src)
	}
	in, err = parseRows("r.csv", strings.NewReader("a\nfoo\n"))
	require.NoError(t, err)
	_, _, err = in.matrix(nil, 1)
	require.ErrorContains(t, err, `row 1, column "a": "foo" is not a number`)
}

func TestPredictionOutput(t *testing.T) {
	t.Parallel()
	resp := &inference.ModelInferResponse{ModelName: "iris", ModelVersion: "2", Outputs: []*inference.ModelInferResponse_InferOutputTensor{
		{Name: "predictions", Datatype: "BYTES", Shape: []int64{2}, Contents: &inference.InferTensorContents{BytesContents: [][]byte{[]byte("0"), []byte("2")}}},
		{Name: "probabilities", Datatype: "FP64", Shape: []int64{2, 3}, Contents: &inference.InferTensorContents{Fp64Contents: []float64{0.9, 0.05, 0.05, 0.1, 0.2, 0.7}}},
	}}
	p := newPrediction(resp, []string{"0", "1", "2"})
	var buf bytes.Buffer
	require.NoError(t, p.print(&globals{output: "table"}, &buf))
	require.Equal(t, "ROW   PREDICTION   P(0)   P(1)   P(2)\n1     0            0.9    0.05   0.05\n2     2            0.1    0.2    0.7\n", buf.String())

	buf.Reset()
	require.NoError(t, p.print(&globals{output: "json"}, &buf))
	var got prediction
	require.NoError(t, json.Unmarshal(buf.Bytes(), &got))
	require.Equal(t, []any{"0", "2"}, got.Predictions)
	require.Equal(t, [][]float64{{0.9, 0.05, 0.05}, {0.1, 0.2, 0.7}}, got.Probabilities)

	buf.Reset()
	require.NoError(t, p.print(&globals{output: "yaml"}, &buf))
	require.Contains(t, buf.String(), "model_version: \"2\"")

	// A regressor and an ONNX model's one FP32 output.
	resp = &inference.ModelInferResponse{Outputs: []*inference.ModelInferResponse_InferOutputTensor{
		{Name: "predictions", Shape: []int64{1}, Contents: &inference.InferTensorContents{Fp64Contents: []float64{151.5}}},
		{Name: "logits", Shape: []int64{1, 2}, Contents: &inference.InferTensorContents{Fp32Contents: []float32{0.5, -1}}},
	}}
	buf.Reset()
	require.NoError(t, newPrediction(resp, nil).print(&globals{output: "table"}, &buf))
	require.Equal(t, "ROW   PREDICTION   logits\n1     151.5        0.5 -1\n", buf.String())
}

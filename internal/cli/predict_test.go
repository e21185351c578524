package cli

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/bmaas/bmaas/api/inference"
)

func TestParseRows(t *testing.T) {
	t.Parallel()
	for _, src := range []string{`{"instances": [[1, 2], [3, null]]}`, `[[1, 2], [3, null]]`} {
		in, err := parseRows("rows.json", strings.NewReader(src), true)
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
	in, err := parseRows("rows.csv", strings.NewReader("b, a ,target\n1,2,x\n3,,y\n"), true)
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
	in, err = parseRows("-", strings.NewReader("a\n1\n"), true)
	require.NoError(t, err)
	require.Equal(t, []string{"a"}, in.header)

	for _, tc := range []struct{ name, src, msg string }{
		{"r.json", `{"rows": []}`, `no "instances"`},
		{"r.json", `[]`, "no rows"},
		{"r.json", `[[1,2],[3]]`, "row 2 has 1 values"},
		{"r.json", `[["a"]]`, "array of rows of numbers"},
		{"r.csv", "a,b\n", "header row and at least one row"},
	} {
		_, err := parseRows(tc.name, strings.NewReader(tc.src), true)
		require.ErrorContains(t, err, tc.msg, tc.src)
	}
	in, err = parseRows("r.csv", strings.NewReader("a\nfoo\n"), true)
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

// TestPredictCSVHeader: the rows sent are the rows of the file, every one
// of them; a header is required unless --no-header says there is none;
// extra columns are ignored when the columns have names to match.
func TestPredictCSVHeader(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := func(name, body string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(body), 0o644))
		return p
	}
	noHeader := file("noheader.csv", "1,2\n3,4\n5,6\n")
	withTarget := file("target.csv", "b,a,target\n2,1,x\n4,3,y\n6,5,z\n")
	numbered := file("numbered.csv", "a,b\n1,2\n")

	named := &fakeServing{features: 2, columns: []string{"a", "b"}}
	g := named.start(t)
	predict := func(g *globals, args ...string) ([]any, error) {
		out, _, err := run(t, g, append([]string{"-o", "json", "predict", "--deployment", "d"}, args...)...)
		if err != nil {
			return nil, err
		}
		var p prediction
		require.NoError(t, json.Unmarshal([]byte(out), &p), out)
		return p.Predictions, nil
	}

	// No header row: refused by default (it was read as names, and one
	// row was lost), every row sent with --no-header.
	_, err := predict(g, "--input", noHeader)
	require.ErrorContains(t, err, "--no-header")
	got, err := predict(g, "--input", noHeader, "--no-header")
	require.NoError(t, err)
	require.Equal(t, []any{1.0, 3.0, 5.0}, got)
	require.Equal(t, [][]float64{{1, 2}, {3, 4}, {5, 6}}, named.lastRows())

	// A header: columns by the signature's names, the target ignored.
	got, err = predict(g, "--input", withTarget)
	require.NoError(t, err)
	require.Equal(t, []any{1.0, 3.0, 5.0}, got)
	got, err = predict(g, "--input", numbered, "--header")
	require.NoError(t, err)
	require.Equal(t, []any{1.0}, got)
	_, err = predict(g, "--input", numbered, "--header", "--no-header")
	require.ErrorContains(t, err, "--header or --no-header")

	// A model whose signature names no columns: a CSV of exactly its
	// features in order, or --columns naming the ones to send.
	anon := &fakeServing{features: 2}
	ga := anon.start(t)
	_, err = predict(ga, "--input", withTarget)
	require.ErrorContains(t, err, "--columns")
	got, err = predict(ga, "--input", withTarget, "--columns", "a,b")
	require.NoError(t, err)
	require.Equal(t, []any{1.0, 3.0, 5.0}, got)
	got, err = predict(ga, "--input", noHeader, "--no-header")
	require.NoError(t, err)
	require.Equal(t, []any{1.0, 3.0, 5.0}, got)
	_, err = predict(ga, "--input", withTarget, "--no-header")
	require.ErrorContains(t, err, "3 values, the model takes 2")

	// Fewer answers than rows is an error, never a shorter table.
	short := &fakeServing{features: 2, columns: []string{"a", "b"}, drop: true}
	_, err = predict(short.start(t), "--input", noHeader, "--no-header")
	require.ErrorContains(t, err, "2 predictions for the 3 rows sent")
}

// TestPredictUnknownDeployment: predicting through a deployment that does
// not exist says so and lists the deployments there are.
func TestPredictUnknownDeployment(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	rows := filepath.Join(dir, "rows.json")
	require.NoError(t, os.WriteFile(rows, []byte(`[[1, 2]]`), 0o644))
	g := (&fakeServing{features: 2}).start(t)
	_, _, err := run(t, g, "predict", "--deployment", "fraud", "--input", rows)
	require.Equal(t, codes.NotFound, status.Code(err), "%v", err)
	require.EqualError(t, err, `NotFound: no deployment named "fraud" (deployments: d); `+
		`serve a model with: bmaas deploy create --model MODEL@REF --name fraud`)
}

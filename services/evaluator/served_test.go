package evaluator

import (
	"encoding/binary"
	"math"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	commonv1 "github.com/bmaas/bmaas/api/bmaas/common/v1"
	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
	"github.com/bmaas/bmaas/api/inference"
	"github.com/bmaas/bmaas/pkg/apierr"
	"github.com/bmaas/bmaas/pkg/ml/dataset"
)

func frame(t *testing.T, csv string) *dataset.Frame {
	t.Helper()
	f, err := dataset.Read(strings.NewReader(csv), dataset.ReadOptions{})
	require.NoError(t, err)
	return f
}

func TestServedSpecFindsColumnsAndTarget(t *testing.T) {
	f := frame(t, "a,b,label\n1,2,0\n3,4,1\n")
	sig := &commonv1.Signature{Inputs: []*commonv1.TensorSpec{{Name: "x", Columns: []string{"a", "b"}}},
		Outputs: []*commonv1.TensorSpec{{Name: "y", Labels: []string{"0", "1"}}}}
	s, err := servedSpecOf(&registryv1.ModelVersion{Signature: sig}, f)
	require.NoError(t, err)
	require.Equal(t, &servedSpec{input: "x", datatype: "FP32", columns: []string{"a", "b"}, target: "label", labels: []string{"0", "1"}}, s)

	// Two columns besides the inputs: the version must say which.
	f2 := frame(t, "a,b,label,id\n1,2,0,7\n")
	_, err = servedSpecOf(&registryv1.ModelVersion{Signature: sig}, f2)
	require.ErrorIs(t, err, apierr.ErrInvalidArgument)
	require.ErrorContains(t, err, "target=")
	s, err = servedSpecOf(&registryv1.ModelVersion{Signature: sig, Labels: map[string]string{"target": "label"}}, f2)
	require.NoError(t, err)
	require.Equal(t, "label", s.target)

	_, err = servedSpecOf(&registryv1.ModelVersion{Model: "m", Version: 2}, f)
	require.ErrorContains(t, err, "signature")
	bad := &commonv1.Signature{Inputs: []*commonv1.TensorSpec{{Name: "x", Columns: []string{"a", "zz"}}}}
	_, err = servedSpecOf(&registryv1.ModelVersion{Signature: bad}, f)
	require.ErrorContains(t, err, `"zz"`)
}

func TestServedOutputs(t *testing.T) {
	cls := &servedSpec{labels: []string{"a", "b"}}
	// Probabilities as the built-in server answers them, raw FP64.
	raw := make([]byte, 32)
	for i, v := range []float64{0.25, 0.75, 0.5, 0.5} {
		binary.LittleEndian.PutUint64(raw[8*i:], math.Float64bits(v))
	}
	resp := &inference.ModelInferResponse{Outputs: []*inference.ModelInferResponse_InferOutputTensor{
		{Name: "predictions", Datatype: "BYTES"}, {Name: "probabilities", Datatype: "FP64", Shape: []int64{2, 2}}},
		RawOutputContents: [][]byte{{}, raw}}
	out, k, err := cls.outputs(resp, 2)
	require.NoError(t, err)
	require.Equal(t, 2, k)
	require.Equal(t, []float64{0.25, 0.75, 0.5, 0.5}, out)

	// One output of logits: a softmax makes them probabilities.
	resp = &inference.ModelInferResponse{Outputs: []*inference.ModelInferResponse_InferOutputTensor{{Name: "output", Datatype: "FP32",
		Contents: &inference.InferTensorContents{Fp32Contents: []float32{0, 0, 2, -1}}}}}
	out, k, err = cls.outputs(resp, 2)
	require.NoError(t, err)
	require.Equal(t, 2, k)
	require.InDeltaSlice(t, []float64{0.5, 0.5, 1 / (1 + math.Exp(-3)), 1 / (1 + math.Exp(3))}, out, 1e-12)

	// A regressor's predictions; a count that does not fit the rows.
	reg := &servedSpec{}
	resp = &inference.ModelInferResponse{Outputs: []*inference.ModelInferResponse_InferOutputTensor{{Name: "predictions", Datatype: "FP64",
		Contents: &inference.InferTensorContents{Fp64Contents: []float64{1.5, 2.5, 3.5}}}}}
	out, k, err = reg.outputs(resp, 3)
	require.NoError(t, err)
	require.Equal(t, 1, k)
	require.Equal(t, []float64{1.5, 2.5, 3.5}, out)
	_, _, err = reg.outputs(resp, 2)
	require.ErrorContains(t, err, "3 values for 2 rows")
}

func TestServedRequestIsRowMajor(t *testing.T) {
	f := frame(t, "a,b,y\n1,2,0\n3,4,1\n5,6,0\n")
	a, _ := f.Col("a")
	b, _ := f.Col("b")
	s := &servedSpec{input: "input", datatype: "FP64"}
	req := s.request("dep", []*dataset.Column{a, b}, 1, 3)
	require.Equal(t, "dep", req.ModelName)
	require.Equal(t, []int64{2, 2}, req.Inputs[0].Shape)
	require.Equal(t, []float64{3, 4, 5, 6}, req.Inputs[0].Contents.Fp64Contents)
}

// Labels written as numbers match the target column's numbers.
func TestClassificationMatchesNumericLabels(t *testing.T) {
	f := frame(t, "y\n1\n0\n1\n")
	tc, _ := f.Col("y")
	o := &outcome{}
	require.NoError(t, o.classification([]string{"0.0", "1.0"}, tc, []float64{0.1, 0.9, 0.8, 0.2, 0.3, 0.7}, 2))
	require.Equal(t, 1.0, o.metrics["accuracy"])
	require.Zero(t, o.skipped)
}

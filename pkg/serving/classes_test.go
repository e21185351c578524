package serving

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"

	commonv1 "github.com/bmaas/bmaas/api/bmaas/common/v1"
	"github.com/bmaas/bmaas/api/inference"
)

// An ONNX classifier whose signature names its classes answers
// "predictions" (labels) and "probabilities" as a native one does: its
// output as it is when it holds probabilities, a softmax of it when it
// holds logits. Without classes the output is served raw.
func TestONNXClassifierAnswersLabelsAndProbabilities(t *testing.T) {
	t.Parallel()
	const path = "../../examples/models/logreg-v1.onnx"
	rows := [][]float32{make([]float32, 30), make([]float32, 30)}
	for j := range rows[1] {
		rows[1][j] = 30 // far from the training data's mean: one class
	}
	x := append(append([]float32{}, rows[0]...), rows[1]...)
	infer := func(m *Model) *inference.ModelInferResponse {
		resp, err := m.Infer(t.Context(), &inference.ModelInferRequest{ModelName: "bc", Inputs: []*inference.ModelInferRequest_InferInputTensor{{
			Name: "input", Datatype: "FP32", Shape: []int64{2, 30}, Contents: &inference.InferTensorContents{Fp32Contents: x}}}})
		require.NoError(t, err)
		return resp
	}
	raw, err := Load(path, Options{Name: "bc", Version: 1, Format: FormatONNX})
	require.NoError(t, err)
	defer raw.Close()
	rawOut := infer(raw)
	require.Equal(t, []string{"probabilities:FP32"}, outputNames(rawOut))
	p := rawOut.Outputs[0].Contents.Fp32Contents

	classes := []string{"benign", "malignant"}
	label := func(i int) string {
		if p[2*i+1] > p[2*i] {
			return classes[1]
		}
		return classes[0]
	}
	for _, logits := range []bool{false, true} {
		m, err := Load(path, Options{Name: "bc", Version: 1, Format: FormatONNX, Classes: classes, Logits: logits})
		require.NoError(t, err)
		resp := infer(m)
		require.Equal(t, []string{"predictions:BYTES", "probabilities:FP64"}, outputNames(resp))
		require.Equal(t, []int64{2}, resp.Outputs[0].Shape)
		require.Equal(t, [][]byte{[]byte(label(0)), []byte(label(1))}, resp.Outputs[0].Contents.BytesContents)
		require.Equal(t, []int64{2, 2}, resp.Outputs[1].Shape)
		got := resp.Outputs[1].Contents.Fp64Contents
		for i := range 2 {
			want0, want1 := float64(p[2*i]), float64(p[2*i+1])
			if logits {
				e0, e1 := math.Exp(want0), math.Exp(want1)
				want0, want1 = e0/(e0+e1), e1/(e0+e1)
			}
			require.InDelta(t, want0, got[2*i], 1e-6)
			require.InDelta(t, want1, got[2*i+1], 1e-6)
			require.InDelta(t, 1, got[2*i]+got[2*i+1], 1e-9)
		}
		md := m.Metadata()
		require.Equal(t, "predictions", md.Outputs[0].Name)
		m.Close()
	}

	_, err = Load(path, Options{Format: FormatONNX, Classes: []string{"a", "b", "c"}})
	require.ErrorIs(t, err, ErrFormat)
	require.ErrorContains(t, err, "answers 2 values a row, its signature names 3 classes")
}

func TestClassesOf(t *testing.T) {
	t.Parallel()
	out := func(kind commonv1.OutputKind, labels ...string) *commonv1.Signature {
		return &commonv1.Signature{Outputs: []*commonv1.TensorSpec{{Name: "output", Labels: labels, Kind: kind}}}
	}
	c, logits := ClassesOf(out(commonv1.OutputKind_OUTPUT_KIND_LOGITS, "0", "1"))
	require.Equal(t, []string{"0", "1"}, c)
	require.True(t, logits)
	c, logits = ClassesOf(out(commonv1.OutputKind_OUTPUT_KIND_PROBABILITIES, "a", "b"))
	require.Equal(t, []string{"a", "b"}, c)
	require.False(t, logits)
	c, _ = ClassesOf(out(commonv1.OutputKind_OUTPUT_KIND_UNSPECIFIED, "a", "b"))
	require.Nil(t, c, "labels of unknown meaning: served raw")
	c, _ = ClassesOf(out(commonv1.OutputKind_OUTPUT_KIND_LOGITS))
	require.Nil(t, c)
	c, _ = ClassesOf(nil)
	require.Nil(t, c)
}

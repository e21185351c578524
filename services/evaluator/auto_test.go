package evaluator

import (
	"testing"

	"github.com/stretchr/testify/require"

	commonv1 "github.com/bmaas/bmaas/api/bmaas/common/v1"
	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
)

// The event path and the sweep evaluate the same versions: those a
// training job produced, NATIVE ones in process, others through their
// serving runtime when their signature names the input columns.
func TestAutoEligible(t *testing.T) {
	t.Parallel()
	native, job := registryv1.ModelFormat_MODEL_FORMAT_NATIVE, &registryv1.Lineage{JobId: "j"}
	sig := &commonv1.Signature{Inputs: []*commonv1.TensorSpec{{Name: "input", Columns: []string{"a", "b"}}}}
	require.True(t, autoEligible(&registryv1.ModelVersion{Format: native, Lineage: job}))
	require.False(t, autoEligible(&registryv1.ModelVersion{Format: native}))
	require.False(t, autoEligible(&registryv1.ModelVersion{Format: registryv1.ModelFormat_MODEL_FORMAT_ONNX, Lineage: job}))
	require.True(t, autoEligible(&registryv1.ModelVersion{Format: registryv1.ModelFormat_MODEL_FORMAT_ONNX, Lineage: job, Signature: sig}))
	require.True(t, autoEligible(&registryv1.ModelVersion{Format: registryv1.ModelFormat_MODEL_FORMAT_PYTORCH, Lineage: job, Signature: sig}))
	require.False(t, autoEligible(&registryv1.ModelVersion{Format: registryv1.ModelFormat_MODEL_FORMAT_PYTORCH, Signature: sig}))
}

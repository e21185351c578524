package evaluator

import (
	"testing"

	"github.com/stretchr/testify/require"

	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
)

// The event path and the sweep evaluate the same versions: NATIVE ones
// that a training job produced.
func TestAutoEligible(t *testing.T) {
	t.Parallel()
	native, job := registryv1.ModelFormat_MODEL_FORMAT_NATIVE, &registryv1.Lineage{JobId: "j"}
	require.True(t, autoEligible(&registryv1.ModelVersion{Format: native, Lineage: job}))
	require.False(t, autoEligible(&registryv1.ModelVersion{Format: native}))
	require.False(t, autoEligible(&registryv1.ModelVersion{Format: registryv1.ModelFormat_MODEL_FORMAT_ONNX, Lineage: job}))
}

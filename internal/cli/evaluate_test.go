package cli

import (
	"testing"

	"github.com/stretchr/testify/require"

	evaluatorv1 "github.com/bmaas/bmaas/api/bmaas/evaluator/v1"
)

func TestEvaluationRequestNamesVersionsByNumber(t *testing.T) {
	t.Parallel()
	ev := evaluationRequest("iris", "3", "flowers", "2", "")
	require.Equal(t, int64(3), ev.ModelVersion)
	require.Empty(t, ev.Version)
	require.Equal(t, int64(2), ev.DatasetVersionNumber)
	require.Empty(t, ev.DatasetVersion)

	ev = evaluationRequest("iris", "prod", "flowers", "latest", "")
	require.Equal(t, "prod", ev.Version, "an alias stays a reference")
	require.Zero(t, ev.ModelVersion)
	require.Zero(t, ev.DatasetVersionNumber)
	require.Empty(t, ev.DatasetVersion, "latest is the default")
}

func TestEvaluationNamesFromEitherForm(t *testing.T) {
	t.Parallel()
	require.Equal(t, "test", splitName(&evaluatorv1.Evaluation{SplitKind: evaluatorv1.EvaluationSplit_EVALUATION_SPLIT_TEST}))
	require.Equal(t, "all", splitName(&evaluatorv1.Evaluation{Split: "all"}), "an evaluator before the enum")
	require.Equal(t, "4", versionName(4, ""))
	require.Equal(t, "4", versionName(0, "4"), "an evaluator before the number")
}

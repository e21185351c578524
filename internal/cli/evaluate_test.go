package cli

import (
	"path/filepath"
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

func TestExperimentSpecSendsEnums(t *testing.T) {
	t.Parallel()
	x, err := readExperiment(filepath.Join("..", "..", "examples", "experiments", "digits-mlp-asha.yaml"))
	require.NoError(t, err)
	require.Equal(t, evaluatorv1.Searcher_SEARCHER_ASHA, x.SearcherKind)
	require.Equal(t, "asha", x.Searcher, "the string stays for an evaluator before the enum")
	x = &evaluatorv1.Experiment{Searcher: "bogus", Mode: "min"}
	experimentEnums(x)
	require.Equal(t, evaluatorv1.Searcher_SEARCHER_UNSPECIFIED, x.SearcherKind, "the evaluator refuses what the CLI does not know")
	require.Equal(t, evaluatorv1.Direction_DIRECTION_MINIMIZE, x.Direction)
}

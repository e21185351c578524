package cli

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	evaluatorv1 "github.com/bmaas/bmaas/api/bmaas/evaluator/v1"
)

func TestReadExampleExperiment(t *testing.T) {
	x, err := readExperiment(filepath.Join("..", "..", "examples", "experiments", "digits-mlp-asha.yaml"))
	require.NoError(t, err)
	require.Equal(t, "asha", x.Searcher)
	require.Equal(t, int32(27), x.MaxTrials)
	require.Equal(t, evaluatorv1.ParamType_PARAM_TYPE_LOG_UNIFORM, x.Params[0].Type)
	require.Equal(t, "optimizer", x.Params[3].Condition.Parent)
	require.Equal(t, "mlp", x.Template.Algorithm)
}

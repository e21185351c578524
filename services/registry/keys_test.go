package registry

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// The default project's keys are the layout from before projects, so an
// upgrade moves nothing; another project's sit apart, and no project's
// prefix covers another's (nor the default project's).
func TestKeysOfProjects(t *testing.T) {
	require.Equal(t, "/bmaas/v1/models/iris", modelKey("iris"))
	require.Equal(t, "/bmaas/v1/versions/iris/", versionsPrefix("iris"))
	require.Equal(t, "/bmaas/v1/datasets/iris", datasetKey("iris"))
	require.Equal(t, "/bmaas/v1/dataset-versions/iris/", datasetVersionsPrefix("iris"))
	require.Equal(t, "/bmaas/v1/models/vision:iris", modelKey("vision/iris"))
	require.Equal(t, "/bmaas/v1/versions/vision:iris/", versionsPrefix("vision/iris"))
	require.NotContains(t, versionKey("vision/iris", 1), versionsPrefix("vision"))
	require.Equal(t, modelKey("iris"), modelKey("default/iris"))
}

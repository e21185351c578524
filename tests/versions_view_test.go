//go:build integration

package tests

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
	"github.com/bmaas/bmaas/tests/harness"
)

// TestVersionListingViews: the basic view of a version listing leaves
// out the signature and the training statistics (most of a version's
// size) and keeps the rest; the full view, the default, has them.
func TestVersionListingViews(t *testing.T) {
	t.Parallel()
	c := harness.Start(t)
	ctx := t.Context()
	uploadDatasetFile(t, c.Registry, "iris", "iris.csv")
	_, err := c.Registry.CreateModel(ctx, &registryv1.CreateModelRequest{Model: &registryv1.Model{Name: "iris"}})
	require.NoError(t, err)
	trainVersion(t, c, "iris", "iris", "logistic")
	for _, view := range []registryv1.VersionView{registryv1.VersionView_VERSION_VIEW_UNSPECIFIED, registryv1.VersionView_VERSION_VIEW_FULL} {
		full, err := c.Registry.ListModelVersions(ctx, &registryv1.ListModelVersionsRequest{Model: "iris", View: view})
		require.NoError(t, err)
		require.NotNil(t, full.Versions[0].Signature, view)
		require.NotNil(t, full.Versions[0].TrainingStats, view)
	}
	basic, err := c.Registry.ListModelVersions(ctx, &registryv1.ListModelVersionsRequest{Model: "iris", View: registryv1.VersionView_VERSION_VIEW_BASIC})
	require.NoError(t, err)
	v := basic.Versions[0]
	require.Nil(t, v.Signature)
	require.Nil(t, v.TrainingStats)
	require.NotEmpty(t, v.Metrics)
	require.NotEmpty(t, v.Sha256)

	code, full := httpDo(t, c, "GET", "/v1/models/iris/versions", nil)
	require.Equal(t, http.StatusOK, code)
	code, small := httpDo(t, c, "GET", "/v1/models/iris/versions?view=VERSION_VIEW_BASIC", nil)
	require.Equal(t, http.StatusOK, code)
	require.NotContains(t, string(small), "training_stats")
	require.Less(t, len(small)*2, len(full), "basic %d bytes, full %d", len(small), len(full))
	code, body := httpDo(t, c, "GET", "/v1/models/iris/versions?view=TINY", nil)
	require.Equal(t, http.StatusBadRequest, code, "%s", body)
}

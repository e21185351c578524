package registry

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/bmaas/bmaas/pkg/apierr"
)

func TestModelUpdatePaths(t *testing.T) {
	t.Parallel()
	all := []string{"description", "task_type", "labels"}
	got, err := modelUpdatePaths(nil)
	require.NoError(t, err)
	require.Equal(t, all, got, "an empty mask updates the three fields, as before masks")
	got, err = modelUpdatePaths(paths("*"))
	require.NoError(t, err)
	require.Equal(t, all, got)
	got, err = modelUpdatePaths(paths("name", "etag", "aliases.prod", "labels"))
	require.NoError(t, err)
	require.Equal(t, []string{"labels"}, got, "the key and output only fields are ignored")
	_, err = modelUpdatePaths(paths("labels", "owner"))
	var fe *apierr.FieldError
	require.ErrorAs(t, err, &fe)
	require.Equal(t, "update_mask", fe.Field)
	require.Contains(t, fe.Msg, `"owner"`)
}

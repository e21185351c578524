package registry

import (
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
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

// TestEveryModelFieldHasAMaskRule: a field added to Model is either
// updatable or ignored in a mask, or a REST PATCH of the whole model (its
// mask inferred from the body's keys) would fail.
func TestEveryModelFieldHasAMaskRule(t *testing.T) {
	t.Parallel()
	fields := (&registryv1.Model{}).ProtoReflect().Descriptor().Fields()
	for i := range fields.Len() {
		name := string(fields.Get(i).Name())
		require.True(t, slices.Contains(modelUpdatable, name) || slices.Contains(modelIgnored, name),
			"model field %q is neither in modelUpdatable nor in modelIgnored", name)
	}
}

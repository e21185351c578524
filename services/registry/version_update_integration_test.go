//go:build integration

package registry

import (
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"

	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
)

func TestUpdateModelVersionMaskOverGRPC(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	ctx := t.Context()
	_, err := f.c.CreateModel(ctx, &registryv1.CreateModelRequest{Model: &registryv1.Model{Name: "m"}})
	require.NoError(t, err)
	a := randomBytes(1000, 7)
	_, err = f.upload(t, "m", a, digest(a), "")
	require.NoError(t, err)

	// Without a mask: merged, as clients sent before masks existed.
	up, err := f.c.UpdateModelVersion(ctx, &registryv1.UpdateModelVersionRequest{Model: "m", Version: "1",
		Description: "first", Metrics: map[string]float64{"f1": 0.5}})
	require.NoError(t, err)
	require.Equal(t, map[string]float64{"acc": 0.9, "f1": 0.5}, up.Version.Metrics)

	// A mask naming one field leaves the others.
	up, err = f.c.UpdateModelVersion(ctx, &registryv1.UpdateModelVersionRequest{Model: "m", Version: "1",
		Metrics: map[string]float64{"f1": 0.7}, Labels: map[string]string{"ignored": "x"}, UpdateMask: paths("metrics.f1")})
	require.NoError(t, err)
	require.Equal(t, map[string]float64{"acc": 0.9, "f1": 0.7}, up.Version.Metrics)
	require.Equal(t, "first", up.Version.Description)
	require.Empty(t, up.Version.Labels)

	_, err = f.c.UpdateModelVersion(ctx, &registryv1.UpdateModelVersionRequest{Model: "m", Version: "1", UpdateMask: paths("status")})
	requireCode(t, err, codes.InvalidArgument, "update_mask")
}

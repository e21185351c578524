package registry

import (
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
	"github.com/bmaas/bmaas/pkg/apierr"
)

func TestVersionUpdateMask(t *testing.T) {
	t.Parallel()
	stored := func() *registryv1.ModelVersion {
		return &registryv1.ModelVersion{Description: "old", Metrics: map[string]float64{"acc": 0.9, "loss": 0.3},
			Labels: map[string]string{"team": "a", "stage": "dev"}}
	}
	for _, tc := range []struct {
		name  string
		req   *registryv1.UpdateModelVersionRequest
		want  *registryv1.ModelVersion
		field string // the InvalidArgument expected, or ""
	}{
		{name: "no mask merges as before",
			req: &registryv1.UpdateModelVersionRequest{Metrics: map[string]float64{"f1": 0.8}, Labels: map[string]string{"team": "b"}},
			want: &registryv1.ModelVersion{Description: "old", Metrics: map[string]float64{"acc": 0.9, "loss": 0.3, "f1": 0.8},
				Labels: map[string]string{"team": "b", "stage": "dev"}}},
		{name: "one field leaves the others",
			req:  &registryv1.UpdateModelVersionRequest{Description: "", Metrics: map[string]float64{"f1": 1}, UpdateMask: paths("description")},
			want: &registryv1.ModelVersion{Metrics: map[string]float64{"acc": 0.9, "loss": 0.3}, Labels: map[string]string{"team": "a", "stage": "dev"}}},
		{name: "a whole map is replaced",
			req:  &registryv1.UpdateModelVersionRequest{Labels: map[string]string{"x": "y"}, UpdateMask: paths("labels")},
			want: &registryv1.ModelVersion{Description: "old", Metrics: map[string]float64{"acc": 0.9, "loss": 0.3}, Labels: map[string]string{"x": "y"}}},
		{name: "map entries are set or deleted",
			req: &registryv1.UpdateModelVersionRequest{Metrics: map[string]float64{"acc": 0.95}, UpdateMask: paths("metrics.acc", "metrics.loss")},
			want: &registryv1.ModelVersion{Description: "old", Metrics: map[string]float64{"acc": 0.95},
				Labels: map[string]string{"team": "a", "stage": "dev"}}},
		{name: "star replaces all three",
			req:  &registryv1.UpdateModelVersionRequest{Description: "new", UpdateMask: paths("*")},
			want: &registryv1.ModelVersion{Description: "new"}},
		{name: "unknown path", req: &registryv1.UpdateModelVersionRequest{UpdateMask: paths("sha256")}, field: "update_mask"},
		{name: "map path without a key", req: &registryv1.UpdateModelVersionRequest{UpdateMask: paths("labels.")}, field: "update_mask"},
		{name: "a metric still needs a finite value",
			req: &registryv1.UpdateModelVersionRequest{Metrics: map[string]float64{"": 1}, UpdateMask: paths("metrics")}, field: "metrics[]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			edit, err := versionUpdate(tc.req)
			if tc.field != "" {
				var fe *apierr.FieldError
				require.ErrorAs(t, err, &fe)
				require.Equal(t, codes.InvalidArgument, apierr.Code(err))
				require.Equal(t, tc.field, fe.Field)
				return
			}
			require.NoError(t, err)
			v := stored()
			edit(v)
			require.Equal(t, tc.want.Description, v.Description)
			require.Equal(t, len(tc.want.Metrics), len(v.Metrics))
			for k, x := range tc.want.Metrics {
				require.Equal(t, x, v.Metrics[k], k)
			}
			require.Equal(t, len(tc.want.Labels), len(v.Labels))
			for k, x := range tc.want.Labels {
				require.Equal(t, x, v.Labels[k], k)
			}
		})
	}
}

func paths(p ...string) *fieldmaskpb.FieldMask { return &fieldmaskpb.FieldMask{Paths: p} }

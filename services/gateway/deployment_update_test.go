package gateway

import (
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	gatewayv1 "github.com/bmaas/bmaas/api/bmaas/gateway/v1"
	schedulerv1 "github.com/bmaas/bmaas/api/bmaas/scheduler/v1"
	"github.com/bmaas/bmaas/pkg/apierr"
)

func mask(paths ...string) *fieldmaskpb.FieldMask { return &fieldmaskpb.FieldMask{Paths: paths} }

func TestUpdatePaths(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		mask *fieldmaskpb.FieldMask
		want []string
		bad  string
	}{
		{name: "absent mask replaces the spec", mask: nil, want: updatableFields},
		{name: "empty mask replaces the spec", mask: mask(), want: updatableFields},
		{name: "star", mask: mask("*"), want: updatableFields},
		{name: "one field", mask: mask("min_replicas"), want: []string{"min_replicas"}},
		{name: "a resources field", mask: mask("resources.cpu_millis"), want: []string{"resources.cpu_millis"}},
		{name: "output only fields are ignored", mask: mask("name", "status.version", "state", "state_kind", "etag", "max_replicas"),
			want: []string{"max_replicas"}},
		{name: "unknown field", mask: mask("min_replicas", "replicas"), bad: `"replicas"`},
		{name: "unknown resources field", mask: mask("resources.cores"), bad: `"resources.cores"`},
		{name: "nested path into a scalar", mask: mask("model.name"), bad: `"model.name"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := updatePaths(tc.mask)
			if tc.bad != "" {
				var fe *apierr.FieldError
				require.ErrorAs(t, err, &fe)
				require.Equal(t, codes.InvalidArgument, apierr.Code(err))
				require.Equal(t, "update_mask", fe.Field)
				require.Contains(t, fe.Msg, tc.bad)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}

func TestApplyPathsLeavesOtherFields(t *testing.T) {
	t.Parallel()
	cur := &gatewayv1.Deployment{Name: "d", Model: "m@1", MinReplicas: 1, MaxReplicas: 4, CanaryVersion: 2, CanaryPercent: 10,
		MaxBatchSize: 8, Resources: &schedulerv1.Resources{CpuMillis: 500, MemoryBytes: 1 << 30},
		Status: &gatewayv1.DeploymentStatus{Version: 1}}
	req := &gatewayv1.Deployment{Name: "d", MaxReplicas: 6, Resources: &schedulerv1.Resources{CpuMillis: 900}}

	got := proto.Clone(cur).(*gatewayv1.Deployment)
	applyPaths(got, req, []string{"max_replicas", "canary_percent", "resources.cpu_millis"})
	want := proto.Clone(cur).(*gatewayv1.Deployment)
	want.MaxReplicas, want.CanaryPercent, want.Resources.CpuMillis = 6, 0, 900
	require.True(t, proto.Equal(want, got), "got %v", got)

	full := proto.Clone(cur).(*gatewayv1.Deployment)
	applyPaths(full, req, updatableFields)
	require.Empty(t, full.Model, "a full replace clears what the request does not set")
	require.Equal(t, int64(1), full.Status.GetVersion(), "status is the server's")
}

// TestEveryDeploymentFieldHasAMaskRule: a field added to Deployment is
// either updatable or ignored in a mask, or a REST PATCH of the whole
// deployment (whose mask is inferred from the body's keys) would fail.
func TestEveryDeploymentFieldHasAMaskRule(t *testing.T) {
	t.Parallel()
	fields := (&gatewayv1.Deployment{}).ProtoReflect().Descriptor().Fields()
	for i := range fields.Len() {
		name := string(fields.Get(i).Name())
		require.True(t, slices.Contains(updatableFields, name) || slices.Contains(ignoredFields, name),
			"deployment field %q is neither in updatableFields nor in ignoredFields", name)
	}
}

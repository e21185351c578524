package cli

import (
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	gatewayv1 "github.com/bmaas/bmaas/api/bmaas/gateway/v1"
	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
	schedulerv1 "github.com/bmaas/bmaas/api/bmaas/scheduler/v1"
)

func TestOutputIDs(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		msg  proto.Message
		want []string
	}{
		{&schedulerv1.SubmitJobResponse{Job: &schedulerv1.Job{Id: "01J", Spec: &schedulerv1.JobSpec{Name: "n", Model: "m"}}}, []string{"01J"}},
		{&schedulerv1.ListJobsResponse{Jobs: []*schedulerv1.Job{{Id: "a"}, {Id: "b"}}}, []string{"a", "b"}},
		{&registryv1.Model{Name: "fraud"}, []string{"fraud"}},
		{&registryv1.ModelVersion{Model: "fraud", Version: 3}, []string{"fraud@3"}},
		{&gatewayv1.CreateDeploymentResponse{Deployment: &gatewayv1.Deployment{Name: "bc", Model: "bc@production"}}, []string{"bc"}},
		{&schedulerv1.ListJobsResponse{}, nil},
	} {
		require.Equal(t, tc.want, idsOf(tc.msg.ProtoReflect()), "%T", tc.msg)
	}
}

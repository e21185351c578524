package gateway

import (
	"testing"

	"github.com/stretchr/testify/require"

	gatewayv1 "github.com/bmaas/bmaas/api/bmaas/gateway/v1"
	schedulerv1 "github.com/bmaas/bmaas/api/bmaas/scheduler/v1"
)

func TestFillDeploymentStates(t *testing.T) {
	t.Parallel()
	d := fillDeployment(&gatewayv1.Deployment{State: "ROLLING_OUT", Status: &gatewayv1.DeploymentStatus{
		Replicas: []*gatewayv1.Replica{{JobState: "JOB_STATE_RUNNING"}, {JobState: ""}}}})
	require.Equal(t, gatewayv1.DeploymentState_DEPLOYMENT_STATE_ROLLING_OUT, d.StateKind)
	require.Equal(t, schedulerv1.JobState_JOB_STATE_RUNNING, d.Status.Replicas[0].JobStateKind)
	require.Equal(t, schedulerv1.JobState_JOB_STATE_UNSPECIFIED, d.Status.Replicas[1].JobStateKind)

	// The string the leader writes decides, even over an enum stored
	// with an earlier state.
	d.State = "READY"
	require.Equal(t, gatewayv1.DeploymentState_DEPLOYMENT_STATE_READY, fillDeployment(d).StateKind)
	require.Equal(t, gatewayv1.DeploymentState_DEPLOYMENT_STATE_UNSPECIFIED, fillDeployment(&gatewayv1.Deployment{}).StateKind)
}

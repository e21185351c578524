package gateway

import (
	gatewayv1 "github.com/bmaas/bmaas/api/bmaas/gateway/v1"
	schedulerv1 "github.com/bmaas/bmaas/api/bmaas/scheduler/v1"
)

// fillDeployment gives a deployment read from the store its state enums
// beside the strings the leader writes (state, and each replica's
// job_state), which decide: both are output only, so no client sets them.
func fillDeployment(d *gatewayv1.Deployment) *gatewayv1.Deployment {
	if d == nil {
		return nil
	}
	d.StateKind = gatewayv1.DeploymentState(gatewayv1.DeploymentState_value["DEPLOYMENT_STATE_"+d.State])
	for _, r := range d.GetStatus().GetReplicas() {
		r.JobStateKind = schedulerv1.JobState(schedulerv1.JobState_value[r.JobState])
	}
	return d
}

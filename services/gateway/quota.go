package gateway

import (
	"context"

	gatewayv1 "github.com/bmaas/bmaas/api/bmaas/gateway/v1"
	"github.com/bmaas/bmaas/pkg/apierr"
	"github.com/bmaas/bmaas/pkg/iam"
)

// checkQuota refuses d (new, or replacing the deployment of its name)
// when it would take its project over the project's quota of
// deployments or of replicas (each deployment counting its most
// replicas). Two changes at the same moment may pass together: the
// quota bounds what is asked, not a race.
func (s *Service) checkQuota(ctx context.Context, d *gatewayv1.Deployment) error {
	project := iam.ProjectOfName(d.GetName())
	q, err := iam.ProjectQuota(ctx, s.st, project)
	if err != nil || q.GetDeployments() == 0 && q.GetReplicas() == 0 {
		return err
	}
	count, replicas := int32(1), mostReplicas(d)
	s.cache.Each(func(_ string, other *gatewayv1.Deployment) {
		if other.GetName() != d.GetName() && iam.InProject(other.GetName(), project) {
			count++
			replicas += mostReplicas(other)
		}
	})
	if n := q.GetDeployments(); n > 0 && count > n {
		return apierr.Exhausted("over quota: project %s holds %d of %d deployments", project, count-1, n)
	}
	if n := q.GetReplicas(); n > 0 && replicas > n {
		return apierr.Exhausted("over quota: project %s would run up to %d of %d replicas (deployment.max_replicas)", project, replicas, n)
	}
	return nil
}

// mostReplicas is the most replicas a deployment may run.
func mostReplicas(d *gatewayv1.Deployment) int32 {
	return max(d.GetMinReplicas(), d.GetMaxReplicas(), 1)
}

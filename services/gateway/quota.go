package gateway

import (
	"context"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/protobuf/proto"

	gatewayv1 "github.com/bmaas/bmaas/api/bmaas/gateway/v1"
	"github.com/bmaas/bmaas/pkg/apierr"
	"github.com/bmaas/bmaas/pkg/iam"
	"github.com/bmaas/bmaas/pkg/store"
)

// checkQuota refuses d (new, or replacing the deployment of its name)
// when it would take its project over the project's quota of
// deployments or of replicas (each deployment counting its most
// replicas). It reads the project's deployments from etcd and returns
// the condition the write of d must commit with: that none of them
// changed since (nil when the project has no such quota). Two changes
// at the same moment cannot both pass: the second commit fails the
// condition, and its caller checks again.
func (s *Service) checkQuota(ctx context.Context, d *gatewayv1.Deployment) ([]store.Cond, error) {
	project := iam.ProjectOfName(d.GetName())
	q, err := iam.ProjectQuota(ctx, s.st, project)
	if err != nil || q.GetDeployments() == 0 && q.GetReplicas() == 0 {
		return nil, err
	}
	prefix := iam.ProjectPrefix(deploymentKey(""), project)
	resp, err := s.st.Client().Get(ctx, prefix, clientv3.WithPrefix())
	if err != nil {
		return nil, err
	}
	count, replicas := int32(1), mostReplicas(d)
	for _, kv := range resp.Kvs {
		other := &gatewayv1.Deployment{}
		if err := proto.Unmarshal(kv.Value, other); err != nil {
			continue
		}
		if other.GetName() != d.GetName() && iam.InProject(other.GetName(), project) {
			count++
			replicas += mostReplicas(other)
		}
	}
	if n := q.GetDeployments(); n > 0 && count > n {
		return nil, apierr.Exhausted("over quota: project %s holds %d of %d deployments", project, count-1, n)
	}
	if n := q.GetReplicas(); n > 0 && replicas > n {
		return nil, apierr.Exhausted("over quota: project %s would run up to %d of %d replicas (deployment.max_replicas)", project, replicas, n)
	}
	return []store.Cond{{Key: prefix, Rev: resp.Header.Revision, Prefix: true}}, nil
}

// mostReplicas is the most replicas a deployment may run.
func mostReplicas(d *gatewayv1.Deployment) int32 {
	return max(d.GetMinReplicas(), d.GetMaxReplicas(), 1)
}

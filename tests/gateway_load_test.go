//go:build integration

package tests

import (
	"net/http"
	"testing"
	"time"

	"github.com/bmaas/bmaas/internal/app"
	"github.com/bmaas/bmaas/pkg/election"
	"github.com/bmaas/bmaas/tests/harness"
)

// withFastLoadReports makes every gateway report its load in test time.
func withFastLoadReports() harness.Option {
	return func(cfg *app.Config) { cfg.Gateway.LoadReportInterval = 200 * time.Millisecond }
}

// TestAutoscaleCountsEveryGateway: two gateways on one etcd and NATS,
// and load that flows only through the one that does not lead. The
// leader's autoscaler sees it in that gateway's load reports: it scales
// the deployment from zero and up, shows the concurrency, and takes it
// to zero once the load stops.
func TestAutoscaleCountsEveryGateway(t *testing.T) {
	t.Parallel()
	opts := []harness.Option{withFastGateway(), withFastLoadReports()}
	c1 := harness.Start(t, opts...)
	c2 := join(t, c1, []string{app.TargetGateway}, opts...)
	ctx := t.Context()

	cli := c1.EtcdClient(t)
	var follower *harness.Cluster
	eventually(t, time.Minute, "a gateway leads", func() bool {
		id, _, err := election.Leader(ctx, cli, "gateway")
		switch {
		case err != nil:
		case id == c1.Addrs.GRPC:
			follower = c2
		case id == c2.Addrs.GRPC:
			follower = c1
		}
		return follower != nil
	})

	status := autoscaledIris(t, c1)
	// No traffic yet: the leader takes the deployment to zero.
	eventually(t, time.Minute, "idle at zero", func() bool {
		st := status()
		return st.GetDesiredReplicas() == 0 && st.GetReadyReplicas() == 0
	})

	body := map[string]any{"inputs": []any{map[string]any{"name": "input", "datatype": "FP64", "shape": []int{1, 4},
		"data": []float64{5.1, 3.5, 1.4, 0.2}}}}
	stop := clients(8, func() bool {
		code, b := httpDo(t, follower, "POST", "/v2/models/iris/infer", body)
		if code != http.StatusOK {
			t.Errorf("infer through the follower: %d %s", code, b)
			return false
		}
		return true
	})
	eventually(t, 2*time.Minute, "scale up past one replica on the follower's load", func() bool {
		st := status()
		return st.GetReadyReplicas() >= 2 && st.GetConcurrency() >= 1
	})
	stop()

	eventually(t, time.Minute, "scale to zero once the load stops", func() bool {
		st := status()
		return st.GetDesiredReplicas() == 0 && st.GetReadyReplicas() == 0
	})
}

//go:build integration

package tests

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	gatewayv1 "github.com/bmaas/bmaas/api/bmaas/gateway/v1"
	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
	"github.com/bmaas/bmaas/tests/harness"
)

// TestAutoscaleUpAndDownToZero: a load ramp adds replicas, idleness takes
// them to zero, and a request arriving at zero is held until a replica is
// ready, then answered.
func TestAutoscaleUpAndDownToZero(t *testing.T) {
	t.Parallel()
	c := harness.Start(t, withFastGateway())
	status := autoscaledIris(t, c)
	body := map[string]any{"inputs": []any{map[string]any{"name": "input", "datatype": "FP64", "shape": []int{1, 4},
		"data": []float64{5.1, 3.5, 1.4, 0.2}}}}

	// Load: 8 clients in a loop ramp the replicas up.
	stop := clients(8, func() bool {
		code, b := httpDo(t, c, "POST", "/v2/models/iris/infer", body)
		if code != http.StatusOK {
			t.Errorf("infer under load: %d %s", code, b)
			return false
		}
		return true
	})
	eventually(t, time.Minute, "scale up past one replica", func() bool { return status().GetReadyReplicas() >= 2 })
	stop()

	// Idle: down to zero.
	eventually(t, time.Minute, "scale to zero", func() bool {
		st := status()
		return st.GetDesiredReplicas() == 0 && st.GetReadyReplicas() == 0
	})

	// A request at zero is held until a replica is ready.
	start := time.Now()
	code, b := httpDo(t, c, "POST", "/v2/models/iris/infer", body)
	require.Equal(t, http.StatusOK, code, string(b))
	t.Logf("request during scale-from-zero answered in %s", time.Since(start))
}

// autoscaledIris trains iris (logistic regression) on c and deploys it
// autoscaled, 0 to 3 replicas, one request in flight per replica, to zero
// after a second idle; it returns the deployment's status.
func autoscaledIris(t *testing.T, c *harness.Cluster) func() *gatewayv1.DeploymentStatus {
	t.Helper()
	ctx := t.Context()
	uploadDatasetFile(t, c.Registry, "iris", "iris.csv")
	_, err := c.Registry.CreateModel(ctx, &registryv1.CreateModelRequest{Model: &registryv1.Model{Name: "iris"}})
	require.NoError(t, err)
	trainVersion(t, c, "iris", "iris", "logistic")
	dc := gatewayv1.NewDeploymentServiceClient(c.Conn)
	_, err = dc.CreateDeployment(ctx, &gatewayv1.CreateDeploymentRequest{Deployment: &gatewayv1.Deployment{
		Model: "iris@latest", MinReplicas: 0, MaxReplicas: 3, TargetConcurrency: 1, Autoscaling: true, ScaleToZeroSeconds: 1}})
	require.NoError(t, err)
	return func() *gatewayv1.DeploymentStatus {
		d, err := dc.GetDeployment(ctx, &gatewayv1.GetDeploymentRequest{Name: "iris"})
		require.NoError(t, err)
		return d.Deployment.GetStatus()
	}
}

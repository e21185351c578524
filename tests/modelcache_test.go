//go:build integration

package tests

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	gatewayv1 "github.com/bmaas/bmaas/api/bmaas/gateway/v1"
	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
	"github.com/bmaas/bmaas/tests/harness"
)

// TestTwoReplicasOnOneNodeDownloadOnce: two replicas of one version on
// the cluster's one node download its artifact once (the node's model
// cache), each sandboxed replica process loads the cached file, and a
// replica started later finds it in the cache.
func TestTwoReplicasOnOneNodeDownloadOnce(t *testing.T) {
	t.Parallel()
	c := harness.Start(t, withFastGateway())
	ctx := t.Context()
	trainedIris(t, c)
	v, err := c.Registry.GetModelVersion(ctx, &registryv1.GetModelVersionRequest{Model: "iris", Version: "1"})
	require.NoError(t, err)
	dc := gatewayv1.NewDeploymentServiceClient(c.Conn)
	_, err = dc.CreateDeployment(ctx, &gatewayv1.CreateDeploymentRequest{Deployment: &gatewayv1.Deployment{
		Name: "iris", Model: "iris@1", MinReplicas: 2, MaxReplicas: 2}})
	require.NoError(t, err)
	ready := func(name string, n int32) func() bool {
		return func() bool {
			d, err := dc.GetDeployment(ctx, &gatewayv1.GetDeploymentRequest{Name: name})
			return err == nil && d.Deployment.GetStatus().GetReadyReplicas() == n
		}
	}
	eventually(t, time.Minute, "two replicas ready", ready("iris", 2))
	require.Equal(t, 1.0, cacheMetric(t, c, "bmaas_model_cache_misses_total"), "one download")
	require.Equal(t, 1.0, cacheMetric(t, c, "bmaas_model_cache_hits_total"), "the other replica did not download")
	require.Equal(t, float64(v.Version.SizeBytes), cacheMetric(t, c, "bmaas_model_cache_download_bytes_total"))
	require.Equal(t, float64(v.Version.SizeBytes), cacheMetric(t, c, "bmaas_model_cache_bytes"))
	code, _ := httpDo(t, c, "POST", "/v2/models/iris/infer", map[string]any{"inputs": []any{map[string]any{
		"name": "input", "datatype": "FP64", "shape": []int{1, 4}, "data": []float64{5.1, 3.5, 1.4, 0.2}}}})
	require.Equal(t, http.StatusOK, code)

	// A third replica of the version, later: a hit.
	_, err = dc.CreateDeployment(ctx, &gatewayv1.CreateDeploymentRequest{Deployment: &gatewayv1.Deployment{
		Name: "iris-b", Model: "iris@1", MinReplicas: 1, MaxReplicas: 1}})
	require.NoError(t, err)
	eventually(t, time.Minute, "third replica ready", ready("iris-b", 1))
	require.Equal(t, 1.0, cacheMetric(t, c, "bmaas_model_cache_misses_total"))
	require.Equal(t, 2.0, cacheMetric(t, c, "bmaas_model_cache_hits_total"))
}

// cacheMetric reads a model cache metric of the cluster's node from /metrics.
func cacheMetric(t *testing.T, c *harness.Cluster, name string) float64 {
	t.Helper()
	code, body := httpDo(t, c, "GET", "/metrics", nil)
	require.Equal(t, http.StatusOK, code)
	for line := range strings.SplitSeq(string(body), "\n") {
		if rest, ok := strings.CutPrefix(line, name+"{"); ok {
			_, v, _ := strings.Cut(rest, "} ")
			f, err := strconv.ParseFloat(v, 64)
			require.NoError(t, err, line)
			return f
		}
	}
	t.Fatalf("no %s in /metrics", name)
	return 0
}

//go:build integration

package tests

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	gatewayv1 "github.com/bmaas/bmaas/api/bmaas/gateway/v1"
	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
	"github.com/bmaas/bmaas/tests/harness"
)

// TestUpdateMasks: UpdateDeployment and UpdateModelVersion change the
// fields their update_mask names and keep the others, over gRPC and REST;
// an unknown path is InvalidArgument naming update_mask; without a mask a
// deployment update replaces the whole spec as it did before masks.
func TestUpdateMasks(t *testing.T) {
	t.Parallel()
	c := harness.Start(t)
	ctx := t.Context()
	_, err := c.Registry.CreateModel(ctx, &registryv1.CreateModelRequest{Model: &registryv1.Model{Name: "maskm"}})
	require.NoError(t, err)
	uploadVersion(t, c, "maskm", registryv1.ModelFormat_MODEL_FORMAT_ONNX, []byte("not a model, never served: min_replicas is 0"))
	dc := gatewayv1.NewDeploymentServiceClient(c.Conn)
	_, err = dc.CreateDeployment(ctx, &gatewayv1.CreateDeploymentRequest{Deployment: &gatewayv1.Deployment{
		Name: "maskd", Model: "maskm@1", MaxReplicas: 2, TargetConcurrency: 3, MaxBatchSize: 8}})
	require.NoError(t, err)
	get := func() *gatewayv1.Deployment {
		got, err := dc.GetDeployment(ctx, &gatewayv1.GetDeploymentRequest{Name: "maskd"})
		require.NoError(t, err)
		return got.Deployment
	}

	// gRPC, one field named: the others keep their values.
	up, err := dc.UpdateDeployment(ctx, &gatewayv1.UpdateDeploymentRequest{
		Deployment: &gatewayv1.Deployment{Name: "maskd", MaxReplicas: 5},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"max_replicas"}}})
	require.NoError(t, err)
	require.Equal(t, int32(5), up.Deployment.MaxReplicas)
	require.Equal(t, "maskm@1", up.Deployment.Model)
	require.Equal(t, int32(8), up.Deployment.MaxBatchSize)
	require.Equal(t, int32(3), up.Deployment.TargetConcurrency)

	_, err = dc.UpdateDeployment(ctx, &gatewayv1.UpdateDeploymentRequest{
		Deployment: &gatewayv1.Deployment{Name: "maskd"}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"replicas"}}})
	require.Equal(t, codes.InvalidArgument, status.Code(err), "%v", err)
	require.Contains(t, status.Convert(err).Message(), "update_mask")

	// gRPC without a mask: the whole spec is replaced, as before masks.
	d := get()
	d.MaxBatchSize, d.Status, d.State, d.Etag = 0, nil, "", ""
	up, err = dc.UpdateDeployment(ctx, &gatewayv1.UpdateDeploymentRequest{Deployment: d})
	require.NoError(t, err)
	require.Zero(t, up.Deployment.MaxBatchSize, "a field the whole deployment leaves unset is cleared")
	require.Equal(t, int32(5), up.Deployment.MaxReplicas)

	// REST with update_mask in the query: only target_concurrency moves.
	code, body := httpDo(t, c, "PATCH", "/v1/deployments/maskd?update_mask=target_concurrency",
		map[string]any{"target_concurrency": 9, "max_replicas": 1})
	require.Equal(t, http.StatusOK, code, string(body))
	require.Equal(t, int32(9), get().TargetConcurrency)
	require.Equal(t, int32(5), get().MaxReplicas)

	// REST without a mask, the whole deployment as GET returned it (output
	// only fields included): what it changes is applied.
	code, body = httpDo(t, c, "GET", "/v1/deployments/maskd", nil)
	require.Equal(t, http.StatusOK, code, string(body))
	var whole map[string]map[string]any
	require.NoError(t, json.Unmarshal(body, &whole))
	dep := whole["deployment"]
	delete(dep, "etag")
	dep["max_batch_size"] = 16
	code, body = httpDo(t, c, "PATCH", "/v1/deployments/maskd", dep)
	require.Equal(t, http.StatusOK, code, string(body))
	require.Equal(t, int32(16), get().MaxBatchSize)
	require.Equal(t, int32(9), get().TargetConcurrency)

	code, body = httpDo(t, c, "PATCH", "/v1/deployments/maskd?update_mask=replicas", map[string]any{})
	require.Equal(t, http.StatusBadRequest, code, string(body))
	require.Contains(t, string(body), "update_mask")

	// UpdateModelVersion over REST, the mask in the body.
	code, body = httpDo(t, c, "PATCH", "/v1/models/maskm/versions/1",
		map[string]any{"metrics": map[string]float64{"f1": 0.5}, "description": "kept", "update_mask": "metrics.f1"})
	require.Equal(t, http.StatusOK, code, string(body))
	v, err := c.Registry.GetModelVersion(ctx, &registryv1.GetModelVersionRequest{Model: "maskm", Version: "1"})
	require.NoError(t, err)
	require.Equal(t, 0.5, v.Version.Metrics["f1"])
	require.Empty(t, v.Version.Description, "description is not in the mask")
}

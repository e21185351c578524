//go:build integration

package tests

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"

	evaluatorv1 "github.com/bmaas/bmaas/api/bmaas/evaluator/v1"
	"github.com/bmaas/bmaas/tests/harness"
)

var fiveServices = []string{
	"bmaas.registry.v1.RegistryService",
	"bmaas.scheduler.v1.SchedulerService",
	"bmaas.agent.v1.AgentService",
	"bmaas.evaluator.v1.EvaluatorService",
	"bmaas.gateway.v1.DeploymentService",
}

func TestUpHealthReflectionAndSkeletons(t *testing.T) {
	t.Parallel()
	c := harness.Start(t)
	ctx := t.Context()

	// The gRPC health service knows each service by its full name and by
	// the short name of its --target (grpc_health_probe -service registry).
	hc := healthpb.NewHealthClient(c.Conn)
	short := []string{"registry", "scheduler", "trainer-agent", "evaluator", "gateway"}
	for _, svc := range append(append([]string{""}, fiveServices...), short...) {
		resp, err := hc.Check(ctx, &healthpb.HealthCheckRequest{Service: svc})
		require.NoError(t, err, svc)
		require.Equal(t, healthpb.HealthCheckResponse_SERVING, resp.Status, svc)
	}

	// Server reflection lists every service, as grpcurl would see them.
	rc, err := reflectionpb.NewServerReflectionClient(c.Conn).ServerReflectionInfo(ctx)
	require.NoError(t, err)
	require.NoError(t, rc.Send(&reflectionpb.ServerReflectionRequest{
		MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{ListServices: ""}}))
	resp, err := rc.Recv()
	require.NoError(t, err)
	var names []string
	for _, s := range resp.GetListServicesResponse().GetService() {
		names = append(names, s.GetName())
	}
	for _, svc := range fiveServices {
		require.True(t, slices.Contains(names, svc), "reflection lists %s: %v", svc, names)
	}
	require.NoError(t, rc.Send(&reflectionpb.ServerReflectionRequest{
		MessageRequest: &reflectionpb.ServerReflectionRequest_FileContainingSymbol{FileContainingSymbol: "bmaas.registry.v1.RegistryService"}}))
	fresp, err := rc.Recv()
	require.NoError(t, err)
	require.NotEmpty(t, fresp.GetFileDescriptorResponse().GetFileDescriptorProto())

	_, err = evaluatorv1.NewEvaluatorServiceClient(c.Conn).ListEvaluations(ctx, &evaluatorv1.ListEvaluationsRequest{})
	require.NoError(t, err)

	for path, want := range map[string]string{
		"/readyz":       "ok",
		"/metrics":      "bmaas_grpc_requests_total",
		"/openapi.json": "/v1/models/{model}/aliases/{alias}",
	} {
		body, code := get(t, c.HTTP+path)
		require.Equal(t, http.StatusOK, code, path)
		require.Contains(t, body, want, path)
	}
	body, _ := get(t, c.HTTP+"/openapi.json")
	var doc struct {
		Info struct{ Title, Version, Description string }
	}
	require.NoError(t, json.Unmarshal([]byte(body), &doc))
	require.Equal(t, "bmaas API", doc.Info.Title)
	require.Equal(t, "v1", doc.Info.Version)
}

func get(t *testing.T, url string) (string, int) {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return string(b), resp.StatusCode
}

func do(t *testing.T, method, url, body string, hdr ...string) (string, int) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, strings.NewReader(body))
	require.NoError(t, err)
	if strings.HasPrefix(body, "{") {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return string(b), resp.StatusCode
}

func TestRESTAndRawBytes(t *testing.T) {
	t.Parallel()
	c := harness.Start(t)
	base := c.HTTP

	body, code := do(t, "POST", base+"/v1/models", `{"name":"fraud","description":"card fraud","labels":{"team":"risk"}}`)
	require.Equal(t, http.StatusOK, code, body)
	body, code = do(t, "POST", base+"/v1/models", `{"name":"Fraud!"}`)
	require.Equal(t, http.StatusBadRequest, code)
	require.Contains(t, body, "model.name")

	artifact := bytes.Repeat([]byte("weights-"), 100_000)
	sum := sha256.Sum256(artifact)
	digest := hex.EncodeToString(sum[:])
	body, code = do(t, "PUT", base+"/v1/models/fraud/artifact?filename=model.onnx", string(artifact))
	require.Equal(t, http.StatusCreated, code, body)
	require.Contains(t, body, digest)
	require.Contains(t, body, "MODEL_FORMAT_ONNX")
	body, code = do(t, "PUT", base+"/v1/models/fraud/artifact", "x", "X-Checksum-Sha256", digest)
	require.Equal(t, http.StatusBadRequest, code)
	require.Contains(t, body, "sha256")

	body, code = do(t, "PUT", base+"/v1/models/fraud/aliases/production", `{"version":"1"}`)
	require.Equal(t, http.StatusOK, code, body)
	body, code = get(t, base+"/v1/models/fraud/versions/production")
	require.Equal(t, http.StatusOK, code, body)
	require.Contains(t, body, `"version":"1"`)
	require.Contains(t, body, `"aliases":["production"]`)

	got, code := get(t, base+"/v1/models/fraud/versions/production/artifact")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, string(artifact), got)
	_, code = get(t, base+"/v1/models/fraud/versions/staging/artifact")
	require.Equal(t, http.StatusNotFound, code)

	csv := "x,y,label\n1,2,a\n3,4,b\n"
	body, code = do(t, "PUT", base+"/v1/datasets/points/csv?filename=points.csv", csv)
	require.Equal(t, http.StatusCreated, code, body)
	require.Contains(t, body, `"rows":"2"`)
	got, code = get(t, base+"/v1/datasets/points/versions/1/csv")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, csv, got)
	body, code = do(t, "PUT", base+"/v1/datasets/bad/csv", "a,b\n1\n")
	require.Equal(t, http.StatusBadRequest, code, body)
	body, code = get(t, base+"/v1/datasets/points")
	require.Equal(t, http.StatusOK, code, body)
	require.Contains(t, body, `"name":"label"`)
}

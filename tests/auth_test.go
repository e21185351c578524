//go:build integration

package tests

import (
	"bytes"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	gatewayv1 "github.com/bmaas/bmaas/api/bmaas/gateway/v1"
	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
	"github.com/bmaas/bmaas/api/inference"
	"github.com/bmaas/bmaas/pkg/lane"
	"github.com/bmaas/bmaas/pkg/mesh"
	"github.com/bmaas/bmaas/services/traineragent/endpointkeys"
	"github.com/bmaas/bmaas/tests/harness"
)

// TestAuthEverywhere: with a token file, every gRPC and HTTP call needs
// the bearer token (the probes and /openapi.json excepted), the
// platform's own calls carry it, and so does the gateway's hop to the
// replicas: serving works end to end, while a replica called directly
// without the token refuses, over gRPC and over its lane.
func TestAuthEverywhere(t *testing.T) {
	t.Parallel()
	tokenFile := filepath.Join(t.TempDir(), "token")
	require.NoError(t, os.WriteFile(tokenFile, []byte("s3cret\n"), 0o600))
	c := harness.Start(t, withFastGateway(), harness.WithTokenFile(tokenFile))
	require.Equal(t, "s3cret", c.Token)
	ctx := t.Context()

	// gRPC without the token, or with another one.
	for _, opts := range [][]grpc.DialOption{nil, {grpc.WithPerRPCCredentials(mesh.Bearer("guess"))}} {
		conn, err := grpc.NewClient(c.Addrs.GRPC, append(opts, grpc.WithTransportCredentials(insecure.NewCredentials()))...)
		require.NoError(t, err)
		_, err = registryv1.NewRegistryServiceClient(conn).ListModels(ctx, &registryv1.ListModelsRequest{})
		require.Equal(t, codes.Unauthenticated, status.Code(err), "%v", err)
		_ = conn.Close()
	}

	// Train and deploy with the token: every internal call carries it.
	servedIris(t, c)
	row := []float64{5.1, 3.5, 1.4, 0.2}
	req := &inference.ModelInferRequest{ModelName: "iris", Inputs: []*inference.ModelInferRequest_InferInputTensor{{
		Name: "input", Datatype: "FP64", Shape: []int64{1, 4}, Contents: &inference.InferTensorContents{Fp64Contents: row}}}}
	_, err := inference.NewGRPCInferenceServiceClient(c.Conn).ModelInfer(ctx, req)
	require.NoError(t, err, "gRPC inference with the token")
	inferBody := map[string]any{"inputs": []any{map[string]any{"name": "input", "datatype": "FP64", "shape": []int{1, 4}, "data": row}}}
	code, body := httpDo(t, c, "POST", "/v2/models/iris/infer", inferBody)
	require.Equal(t, http.StatusOK, code, string(body))
	// The raw bytes of the edge reach the registry with the edge's token.
	code, body = httpDo(t, c, "GET", "/v1/datasets/iris/versions/1/csv", nil)
	require.Equal(t, http.StatusOK, code, string(body))

	// HTTP without the token: refused, except the probes and the API
	// description (the metrics say what the caller may see: a token).
	for _, tc := range []struct {
		method, path string
		want         int
	}{
		{"GET", "/v1/models", http.StatusUnauthorized},
		{"GET", "/v1/datasets/iris/versions/1/csv", http.StatusUnauthorized},
		{"POST", "/v2/models/iris/infer", http.StatusUnauthorized},
		{"POST", "/v1/models/iris:predict", http.StatusUnauthorized},
		{"GET", "/v2/models/iris", http.StatusUnauthorized},
		{"GET", "/readyz", http.StatusOK},
		{"GET", "/livez", http.StatusOK},
		{"GET", "/metrics", http.StatusUnauthorized},
		{"GET", "/openapi.json", http.StatusOK},
		{"GET", "/v2/health/ready", http.StatusOK},
	} {
		hr, err := http.NewRequestWithContext(ctx, tc.method, c.HTTP+tc.path, bytes.NewReader([]byte(`{}`)))
		require.NoError(t, err)
		resp, err := http.DefaultClient.Do(hr)
		require.NoError(t, err)
		_ = resp.Body.Close()
		require.Equal(t, tc.want, resp.StatusCode, "%s %s", tc.method, tc.path)
	}
	// With it, every series (the token is the mesh's, a cluster-admin's).
	code, body = httpDo(t, c, "GET", "/metrics", nil)
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, string(body), "bmaas_grpc_requests_total")

	// The replica itself, called directly.
	cli := c.EtcdClient(t)
	kvs, err := cli.Get(ctx, endpointkeys.Of("iris"), clientv3.WithPrefix())
	require.NoError(t, err)
	require.NotEmpty(t, kvs.Kvs)
	ep := &gatewayv1.Endpoint{}
	require.NoError(t, proto.Unmarshal(kvs.Kvs[0].Value, ep))
	require.NotEmpty(t, ep.LaneAddress)
	wire, err := proto.Marshal(req)
	require.NoError(t, err)
	// The replica takes its own token (from its endpoint record, which
	// only etcd's users read) and refuses the cluster's: a replica never
	// holds the cluster token, nor is it sent one.
	require.NotEmpty(t, ep.Token)
	require.NotEqual(t, "s3cret", ep.Token)
	for _, tok := range []string{"", "s3cret", ep.Token} {
		opts := []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
		if tok != "" {
			opts = append(opts, grpc.WithPerRPCCredentials(mesh.Bearer(tok)))
		}
		conn, err := grpc.NewClient(ep.Address, opts...)
		require.NoError(t, err)
		_, gerr := inference.NewGRPCInferenceServiceClient(conn).ModelInfer(ctx, req)
		_ = conn.Close()
		lc := lane.NewClient(ep.LaneAddress, tok)
		resp, lerr := lc.Call(ctx, lane.MethodModelInfer, wire)
		_ = lc.Close()
		if tok != ep.Token {
			require.Equal(t, codes.Unauthenticated, status.Code(gerr), "replica gRPC with %q: %v", tok, gerr)
			require.Equal(t, codes.Unauthenticated, status.Code(lerr), "replica lane with %q: %v", tok, lerr)
			continue
		}
		require.NoError(t, gerr, "replica gRPC with the token")
		require.NoError(t, lerr, "replica lane with the token")
		resp.Free()
	}
}

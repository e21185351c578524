//go:build integration

package tests

import (
	"bytes"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/bmaas/bmaas/api/inference"
	"github.com/bmaas/bmaas/tests/harness"
)

// TestRequestIDs: every inference answer says its request id, the
// client's when it sends one, over KServe v2 REST, :predict and gRPC.
func TestRequestIDs(t *testing.T) {
	t.Parallel()
	c := harness.Start(t, withFastGateway())
	servedIris(t, c)
	body := []byte(`{"inputs":[{"name":"input","datatype":"FP64","shape":[1,4],"data":[5.1,3.5,1.4,0.2]}]}`)
	post := func(path, id string, b []byte) *http.Response {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, c.HTTP+path, bytes.NewReader(b))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		if id != "" {
			req.Header.Set("X-Request-Id", id)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		_ = resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
		return resp
	}
	require.Equal(t, "client-7", post("/v2/models/iris/infer", "client-7", body).Header.Get("X-Request-Id"))
	made := post("/v2/models/iris/infer", "", body).Header.Get("X-Request-Id")
	require.Len(t, made, 32)
	require.NotEqual(t, made, post("/v2/models/iris/infer", "", body).Header.Get("X-Request-Id"))
	require.Equal(t, "p-1", post("/v1/models/iris:predict", "p-1", []byte(`{"instances":[[5.1,3.5,1.4,0.2]]}`)).Header.Get("X-Request-Id"))

	ic := inference.NewGRPCInferenceServiceClient(c.Conn)
	req := &inference.ModelInferRequest{ModelName: "iris", Inputs: []*inference.ModelInferRequest_InferInputTensor{{
		Name: "input", Datatype: "FP64", Shape: []int64{1, 4}, Contents: &inference.InferTensorContents{Fp64Contents: []float64{5.1, 3.5, 1.4, 0.2}}}}}
	var hdr metadata.MD
	_, err := ic.ModelInfer(metadata.AppendToOutgoingContext(t.Context(), "x-request-id", "grpc-9"), req, grpc.Header(&hdr))
	require.NoError(t, err)
	require.Equal(t, []string{"grpc-9"}, hdr.Get("x-request-id"))
	_, err = ic.ModelInfer(t.Context(), req, grpc.Header(&hdr))
	require.NoError(t, err)
	require.Len(t, hdr.Get("x-request-id"), 1)
	require.Len(t, hdr.Get("x-request-id")[0], 32)
}

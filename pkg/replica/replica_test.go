package replica

import (
	"context"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/bmaas/bmaas/api/inference"
	"github.com/bmaas/bmaas/pkg/ml/dataset"
	"github.com/bmaas/bmaas/pkg/ml/train"
)

// A replica runs the platform's gRPC server: the health service answers
// SERVING without the token, ModelInfer wants the token, and its calls
// show on GET /metrics; after Shutdown the health service is gone with
// the server.
func TestReplicaServesHealthAndMetrics(t *testing.T) {
	f, err := dataset.ReadFile("../../examples/datasets/iris.csv", dataset.ReadOptions{})
	require.NoError(t, err)
	m, err := train.Run(t.Context(), train.Spec{Algorithm: "logistic", Target: "target", Seed: 1}, f, train.Callbacks{})
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "model.bmaas")
	require.NoError(t, m.Save(path))

	r, err := Start(Options{ModelPath: path, Format: "native", Name: "iris", Version: 1, ListenHost: "127.0.0.1", Token: "tok"})
	require.NoError(t, err)
	addr, _ := r.Addrs("127.0.0.1")
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer conn.Close()

	h, err := healthpb.NewHealthClient(conn).Check(t.Context(), &healthpb.HealthCheckRequest{})
	require.NoError(t, err)
	require.Equal(t, healthpb.HealthCheckResponse_SERVING, h.Status)

	inf := inference.NewGRPCInferenceServiceClient(conn)
	req := &inference.ModelInferRequest{ModelName: "iris", Inputs: []*inference.ModelInferRequest_InferInputTensor{{
		Name: "input", Datatype: "FP64", Shape: []int64{1, 4},
		Contents: &inference.InferTensorContents{Fp64Contents: []float64{5.1, 3.5, 1.4, 0.2}}}}}
	_, err = inf.ModelInfer(t.Context(), req)
	require.Equal(t, codes.Unauthenticated, status.Code(err), "%v", err)
	ctx := metadata.AppendToOutgoingContext(t.Context(), "authorization", "Bearer tok")
	_, err = inf.ModelInfer(ctx, req)
	require.NoError(t, err)

	resp, err := http.Get("http://127.0.0.1:" + strconv.Itoa(r.MetricsPort()) + "/metrics")
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, string(body), `bmaas_grpc_requests_total{code="OK",method="ModelInfer",service="inference.GRPCInferenceService"} 1`)
	require.Contains(t, string(body), "go_goroutines")

	r.Shutdown(context.Background())
	_, err = healthpb.NewHealthClient(conn).Check(t.Context(), &healthpb.HealthCheckRequest{})
	require.Error(t, err)
}

package serving_test

import (
	"context"
	"net"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/bmaas/bmaas/api/inference"
	"github.com/bmaas/bmaas/pkg/apierr"
	"github.com/bmaas/bmaas/pkg/ml/artifact"
	"github.com/bmaas/bmaas/pkg/ml/dataset"
	"github.com/bmaas/bmaas/pkg/ml/train"
	"github.com/bmaas/bmaas/pkg/serving"
)

const datasets = "../../examples/datasets/"

// trainModel trains algo on a sample dataset and saves the artifact.
func trainModel(t testing.TB, algo, data string) (string, *artifact.Model, *dataset.Frame) {
	f, err := dataset.ReadFile(datasets+data, dataset.ReadOptions{})
	require.NoError(t, err)
	m, err := train.Run(t.Context(), train.Spec{Algorithm: algo, Target: "target", Seed: 1}, f, train.Callbacks{})
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "model.bmaas")
	require.NoError(t, m.Save(path))
	return path, m, f
}

// matrix returns the frame's input columns in the model's order.
func matrix(t testing.TB, m *artifact.Model, f *dataset.Frame) []float64 {
	var x []float64
	for r := range f.NumRows() {
		for _, name := range m.Inputs() {
			c, err := f.Col(name)
			require.NoError(t, err)
			x = append(x, c.Num[r])
		}
	}
	return x
}

// serve starts a gRPC server of s on 127.0.0.1 and returns a client.
func serve(t testing.TB, s *serving.Server) inference.GRPCInferenceServiceClient {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	g := grpc.NewServer(grpc.UnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		resp, err := h(ctx, req)
		return resp, apierr.ToStatus(err)
	}))
	inference.RegisterGRPCInferenceServiceServer(g, s)
	go func() { _ = g.Serve(lis) }()
	t.Cleanup(g.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	return inference.NewGRPCInferenceServiceClient(conn)
}

package cli

import (
	"context"
	"net"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/proto"

	gatewayv1 "github.com/bmaas/bmaas/api/bmaas/gateway/v1"
)

// fakeDeployments serves one deployment and records the last update.
type fakeDeployments struct {
	gatewayv1.UnimplementedDeploymentServiceServer
	mu   sync.Mutex
	d    *gatewayv1.Deployment
	last *gatewayv1.UpdateDeploymentRequest
}

func (f *fakeDeployments) start(t *testing.T) *globals {
	lis := bufconn.Listen(1 << 20)
	srv := grpc.NewServer()
	gatewayv1.RegisterDeploymentServiceServer(srv, f)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return &globals{dial: func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }}
}

func (f *fakeDeployments) GetDeployment(context.Context, *gatewayv1.GetDeploymentRequest) (*gatewayv1.GetDeploymentResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return &gatewayv1.GetDeploymentResponse{Deployment: proto.Clone(f.d).(*gatewayv1.Deployment)}, nil
}

func (f *fakeDeployments) UpdateDeployment(_ context.Context, r *gatewayv1.UpdateDeploymentRequest) (*gatewayv1.UpdateDeploymentResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.last = r
	return &gatewayv1.UpdateDeploymentResponse{Deployment: r.GetDeployment()}, nil
}

func TestDeployScaleSendsUpdateMask(t *testing.T) {
	t.Parallel()
	f := &fakeDeployments{d: &gatewayv1.Deployment{Name: "d", Model: "m@1", MinReplicas: 1, MaxReplicas: 1,
		CanaryVersion: 2, CanaryPercent: 10, Etag: "7"}}
	g := f.start(t)
	_, _, err := run(t, g, "deploy", "scale", "d", "--min", "2", "--max", "3")
	require.NoError(t, err)
	require.NotNil(t, f.last)
	require.ElementsMatch(t, []string{"min_replicas", "max_replicas", "autoscaling", "scale_to_zero_seconds"},
		f.last.GetUpdateMask().GetPaths(), "scale changes only the replica bounds: a canary set meanwhile survives")
	require.Equal(t, int32(2), f.last.GetDeployment().GetMinReplicas())
	require.Equal(t, int32(3), f.last.GetDeployment().GetMaxReplicas())
	require.Equal(t, "7", f.last.GetDeployment().GetEtag(), "the etag read is sent back")
}

//go:build integration

package gateway

import (
	"context"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"

	gatewayv1 "github.com/bmaas/bmaas/api/bmaas/gateway/v1"
	"github.com/bmaas/bmaas/api/inference"
	"github.com/bmaas/bmaas/internal/testenv"
	"github.com/bmaas/bmaas/pkg/lane"
	"github.com/bmaas/bmaas/services/traineragent/endpointkeys"
)

// listener records the authorization each call brings.
type listener struct {
	inference.UnimplementedGRPCInferenceServiceServer
	mu   sync.Mutex
	auth []string
}

func (l *listener) ModelInfer(ctx context.Context, _ *inference.ModelInferRequest) (*inference.ModelInferResponse, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	l.mu.Lock()
	l.auth = append(l.auth, md.Get("authorization")...)
	l.mu.Unlock()
	return &inference.ModelInferResponse{ModelName: "m"}, nil
}

// TestRouterSendsEachReplicaItsOwnToken: whatever an endpoint record
// points at receives that replica's token, never anything of the
// cluster's, on gRPC and on the lane; a record without a token is not
// routed to.
func TestRouterSendsEachReplicaItsOwnToken(t *testing.T) {
	t.Parallel()
	cli := testenv.EtcdClient(t)
	rec := &listener{}
	g := grpc.NewServer()
	inference.RegisterGRPCInferenceServiceServer(g, rec)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = g.Serve(lis) }()
	t.Cleanup(g.Stop)

	ls := lane.NewServer(func(_ context.Context, _ lane.Method, _, out []byte) ([]byte, error) {
		return proto.MarshalOptions{}.MarshalAppend(out, &inference.ModelInferResponse{ModelName: "m"})
	})
	ls.Token = "replica-secret"
	laneLis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = ls.Serve(laneLis) }()
	t.Cleanup(ls.Close)

	r := newRouter(cli, slog.New(slog.DiscardHandler), true, nil)
	ctx, cancel := context.WithCancel(t.Context())
	t.Cleanup(func() { cancel(); r.close() })
	go r.run(ctx)

	put := func(ep *gatewayv1.Endpoint) {
		b, err := proto.Marshal(ep)
		require.NoError(t, err)
		_, err = cli.Put(t.Context(), endpointkeys.Key(ep.Deployment, ep.Replica), string(b))
		require.NoError(t, err)
	}
	put(&gatewayv1.Endpoint{Deployment: "dep", Replica: "untokened", Address: lis.Addr().String(), Version: 1})
	put(&gatewayv1.Endpoint{Deployment: "dep", Replica: "r1", Address: lis.Addr().String(),
		LaneAddress: laneLis.Addr().String(), Version: 1, Token: "replica-secret"})
	require.Eventually(t, func() bool { bs, _ := r.backends("dep"); return len(bs) == 1 }, 10*time.Second, 10*time.Millisecond)
	bs, _ := r.backends("dep")
	require.Len(t, bs, 1, "the record without a token is routed to")
	b := bs[0]
	_, err = b.cli.ModelInfer(t.Context(), &inference.ModelInferRequest{ModelName: "m"})
	require.NoError(t, err)
	require.NotNil(t, b.lane)
	resp, err := b.lane.Call(t.Context(), lane.MethodModelInfer, nil)
	require.NoError(t, err, "the lane refused the replica's own token")
	resp.Free()
	rec.mu.Lock()
	defer rec.mu.Unlock()
	require.Equal(t, []string{"Bearer replica-secret"}, rec.auth)
}

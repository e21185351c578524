package replica

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/bmaas/bmaas/api/inference"
	"github.com/bmaas/bmaas/pkg/lane"
	"github.com/bmaas/bmaas/pkg/serving"
)

// The replica's lane refuses what is not a ModelInfer call, naming the
// problem, as its gRPC port does.
func TestLaneHandlerRefusesBadCalls(t *testing.T) {
	h := laneHandler(serving.NewServer(nil))
	ctx := context.Background()

	_, err := h(ctx, lane.Method(9), nil, nil)
	require.Equal(t, codes.Unimplemented, status.Code(err), "%v", err)

	_, err = h(ctx, lane.MethodModelInfer, []byte{0xff, 0xff, 0xff}, nil)
	require.Equal(t, codes.InvalidArgument, status.Code(err), "%v", err)
	require.Contains(t, status.Convert(err).Message(), "not a ModelInferRequest")

	req, err := proto.Marshal(&inference.ModelInferRequest{ModelName: "nope"})
	require.NoError(t, err)
	_, err = h(ctx, lane.MethodModelInfer, req, nil)
	require.Equal(t, codes.NotFound, status.Code(err), "%v", err)
	require.Contains(t, status.Convert(err).Message(), "nope")

	req, err = proto.Marshal(&inference.ModelInferRequest{})
	require.NoError(t, err)
	_, err = h(ctx, lane.MethodModelInfer, req, nil)
	require.Equal(t, codes.InvalidArgument, status.Code(err), "%v", err)
	require.Contains(t, status.Convert(err).Message(), "model_name")
}

package gateway

import (
	"context"

	gatewayv1 "github.com/bmaas/bmaas/api/bmaas/gateway/v1"
)

// runtimeHandler adapts the runtime API to the Service; errors are mapped
// to status codes by the server's interceptor.
type runtimeHandler struct {
	gatewayv1.UnimplementedRuntimeServiceServer
	s *Service
}

func (h *runtimeHandler) CreateRuntime(ctx context.Context, req *gatewayv1.CreateRuntimeRequest) (*gatewayv1.CreateRuntimeResponse, error) {
	r, err := h.s.CreateRuntime(ctx, req.GetRuntime())
	return &gatewayv1.CreateRuntimeResponse{Runtime: r}, err
}

func (h *runtimeHandler) GetRuntime(ctx context.Context, req *gatewayv1.GetRuntimeRequest) (*gatewayv1.GetRuntimeResponse, error) {
	r, err := h.s.GetRuntime(ctx, req.GetName())
	return &gatewayv1.GetRuntimeResponse{Runtime: r}, err
}

func (h *runtimeHandler) ListRuntimes(ctx context.Context, req *gatewayv1.ListRuntimesRequest) (*gatewayv1.ListRuntimesResponse, error) {
	return h.s.ListRuntimes(ctx, req)
}

func (h *runtimeHandler) DeleteRuntime(ctx context.Context, req *gatewayv1.DeleteRuntimeRequest) (*gatewayv1.DeleteRuntimeResponse, error) {
	return &gatewayv1.DeleteRuntimeResponse{}, h.s.DeleteRuntime(ctx, req.GetName())
}

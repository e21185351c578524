package gateway

import (
	"context"

	gatewayv1 "github.com/bmaas/bmaas/api/bmaas/gateway/v1"
)

// handler adapts the deployment API to the Service; errors are mapped to
// status codes by the server's interceptor.
type handler struct {
	gatewayv1.UnimplementedDeploymentServiceServer
	s *Service
}

func (h *handler) CreateDeployment(ctx context.Context, req *gatewayv1.CreateDeploymentRequest) (*gatewayv1.CreateDeploymentResponse, error) {
	d, err := h.s.Create(ctx, req.GetDeployment())
	return &gatewayv1.CreateDeploymentResponse{Deployment: d}, err
}

func (h *handler) GetDeployment(ctx context.Context, req *gatewayv1.GetDeploymentRequest) (*gatewayv1.GetDeploymentResponse, error) {
	d, err := h.s.Get(ctx, req.GetName())
	h.s.withLLM(d)
	return &gatewayv1.GetDeploymentResponse{Deployment: d}, err
}

func (h *handler) ListDeployments(ctx context.Context, req *gatewayv1.ListDeploymentsRequest) (*gatewayv1.ListDeploymentsResponse, error) {
	resp, err := h.s.List(ctx, req)
	for _, d := range resp.GetDeployments() {
		h.s.withLLM(d)
	}
	return resp, err
}

func (h *handler) UpdateDeployment(ctx context.Context, req *gatewayv1.UpdateDeploymentRequest) (*gatewayv1.UpdateDeploymentResponse, error) {
	d, err := h.s.Update(ctx, req.GetDeployment(), req.GetUpdateMask())
	return &gatewayv1.UpdateDeploymentResponse{Deployment: d}, err
}

func (h *handler) DeleteDeployment(ctx context.Context, req *gatewayv1.DeleteDeploymentRequest) (*gatewayv1.DeleteDeploymentResponse, error) {
	return &gatewayv1.DeleteDeploymentResponse{}, h.s.Delete(ctx, req.GetName())
}

func (h *handler) RollbackDeployment(ctx context.Context, req *gatewayv1.RollbackDeploymentRequest) (*gatewayv1.RollbackDeploymentResponse, error) {
	d, err := h.s.Rollback(ctx, req.GetName())
	return &gatewayv1.RollbackDeploymentResponse{Deployment: d}, err
}

func (h *handler) ListPayloads(ctx context.Context, req *gatewayv1.ListPayloadsRequest) (*gatewayv1.ListPayloadsResponse, error) {
	return h.s.ListPayloads(ctx, req)
}

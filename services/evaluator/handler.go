package evaluator

import (
	"context"

	evaluatorv1 "github.com/bmaas/bmaas/api/bmaas/evaluator/v1"
)

// handler adapts the gRPC API to the Evaluator; errors are mapped to status
// codes by the server's interceptor.
type handler struct {
	evaluatorv1.UnimplementedEvaluatorServiceServer
	e *Evaluator
}

func (h *handler) CreateEvaluation(ctx context.Context, req *evaluatorv1.CreateEvaluationRequest) (*evaluatorv1.CreateEvaluationResponse, error) {
	ev, err := h.e.CreateEvaluation(ctx, req.GetEvaluation(), TriggerManual)
	return &evaluatorv1.CreateEvaluationResponse{Evaluation: ev}, err
}

func (h *handler) GetEvaluation(ctx context.Context, req *evaluatorv1.GetEvaluationRequest) (*evaluatorv1.GetEvaluationResponse, error) {
	ev, err := h.e.GetEvaluation(ctx, req.GetId())
	return &evaluatorv1.GetEvaluationResponse{Evaluation: ev}, err
}

func (h *handler) ListEvaluations(ctx context.Context, req *evaluatorv1.ListEvaluationsRequest) (*evaluatorv1.ListEvaluationsResponse, error) {
	return h.e.ListEvaluations(ctx, req)
}

func (h *handler) SetEvaluationPolicy(ctx context.Context, req *evaluatorv1.SetEvaluationPolicyRequest) (*evaluatorv1.SetEvaluationPolicyResponse, error) {
	p, err := h.e.SetEvaluationPolicy(ctx, req.GetPolicy(), req.GetEtag())
	return &evaluatorv1.SetEvaluationPolicyResponse{Policy: p}, err
}

func (h *handler) GetEvaluationPolicy(ctx context.Context, req *evaluatorv1.GetEvaluationPolicyRequest) (*evaluatorv1.GetEvaluationPolicyResponse, error) {
	p, err := h.e.GetEvaluationPolicy(ctx, req.GetModel())
	return &evaluatorv1.GetEvaluationPolicyResponse{Policy: p}, err
}

func (h *handler) ListDecisions(ctx context.Context, req *evaluatorv1.ListDecisionsRequest) (*evaluatorv1.ListDecisionsResponse, error) {
	return h.e.ListDecisions(ctx, req)
}

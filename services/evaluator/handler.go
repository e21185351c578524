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

func (h *handler) CreateExperiment(ctx context.Context, req *evaluatorv1.CreateExperimentRequest) (*evaluatorv1.CreateExperimentResponse, error) {
	x, err := h.e.CreateExperiment(ctx, req.GetExperiment())
	return &evaluatorv1.CreateExperimentResponse{Experiment: x}, err
}

func (h *handler) GetExperiment(ctx context.Context, req *evaluatorv1.GetExperimentRequest) (*evaluatorv1.GetExperimentResponse, error) {
	x, err := h.e.GetExperiment(ctx, req.GetId())
	return &evaluatorv1.GetExperimentResponse{Experiment: x}, err
}

func (h *handler) ListExperiments(ctx context.Context, req *evaluatorv1.ListExperimentsRequest) (*evaluatorv1.ListExperimentsResponse, error) {
	return h.e.ListExperiments(ctx, req)
}

func (h *handler) PauseExperiment(ctx context.Context, req *evaluatorv1.PauseExperimentRequest) (*evaluatorv1.PauseExperimentResponse, error) {
	x, err := h.e.SetExperimentState(ctx, req.GetId(), evaluatorv1.ExperimentState_EXPERIMENT_STATE_PAUSED)
	return &evaluatorv1.PauseExperimentResponse{Experiment: x}, err
}

func (h *handler) ResumeExperiment(ctx context.Context, req *evaluatorv1.ResumeExperimentRequest) (*evaluatorv1.ResumeExperimentResponse, error) {
	x, err := h.e.SetExperimentState(ctx, req.GetId(), evaluatorv1.ExperimentState_EXPERIMENT_STATE_RUNNING)
	return &evaluatorv1.ResumeExperimentResponse{Experiment: x}, err
}

func (h *handler) CancelExperiment(ctx context.Context, req *evaluatorv1.CancelExperimentRequest) (*evaluatorv1.CancelExperimentResponse, error) {
	x, err := h.e.SetExperimentState(ctx, req.GetId(), evaluatorv1.ExperimentState_EXPERIMENT_STATE_CANCELLED)
	return &evaluatorv1.CancelExperimentResponse{Experiment: x}, err
}

func (h *handler) ListTrials(ctx context.Context, req *evaluatorv1.ListTrialsRequest) (*evaluatorv1.ListTrialsResponse, error) {
	return h.e.ListTrials(ctx, req)
}

func (h *handler) GetBestTrial(ctx context.Context, req *evaluatorv1.GetBestTrialRequest) (*evaluatorv1.GetBestTrialResponse, error) {
	t, err := h.e.GetBestTrial(ctx, req.GetExperimentId())
	return &evaluatorv1.GetBestTrialResponse{Trial: t}, err
}

package evaluator

import (
	"context"

	evaluatorv1 "github.com/bmaas/bmaas/api/bmaas/evaluator/v1"
	"github.com/bmaas/bmaas/pkg/apierr"
	"github.com/bmaas/bmaas/services/evaluator/alerting"
	"github.com/bmaas/bmaas/services/evaluator/monitor"
)

// monitorHandler adapts the MonitorService API to the monitor and the
// alert engine.
type monitorHandler struct {
	evaluatorv1.UnimplementedMonitorServiceServer
	mon    *monitor.Monitor
	alerts *alerting.Engine
	export func(ctx context.Context, req *evaluatorv1.CreateDatasetFromPayloadsRequest) (*evaluatorv1.CreateDatasetFromPayloadsResponse, error)
}

func (h *monitorHandler) CreateDatasetFromPayloads(ctx context.Context, req *evaluatorv1.CreateDatasetFromPayloadsRequest) (*evaluatorv1.CreateDatasetFromPayloadsResponse, error) {
	if h.export == nil {
		return nil, errNoJetStream
	}
	return h.export(ctx, req)
}

// errNoJetStream answers the monitoring calls of an evaluator without a bus.
var errNoJetStream = apierr.Precondition("deployment monitoring needs NATS JetStream, which this evaluator has not")

func (h *monitorHandler) SubmitFeedback(ctx context.Context, req *evaluatorv1.SubmitFeedbackRequest) (*evaluatorv1.SubmitFeedbackResponse, error) {
	if h.mon == nil {
		return nil, errNoJetStream
	}
	rows, err := h.mon.Submit(ctx, req)
	return &evaluatorv1.SubmitFeedbackResponse{Rows: rows}, err
}

func (h *monitorHandler) ListMonitorWindows(ctx context.Context, req *evaluatorv1.ListMonitorWindowsRequest) (*evaluatorv1.ListMonitorWindowsResponse, error) {
	if h.mon == nil {
		return nil, errNoJetStream
	}
	return h.mon.List(ctx, req)
}

func (h *monitorHandler) CreateAlertRule(ctx context.Context, req *evaluatorv1.CreateAlertRuleRequest) (*evaluatorv1.CreateAlertRuleResponse, error) {
	r, err := h.alerts.Create(ctx, req.GetRule())
	return &evaluatorv1.CreateAlertRuleResponse{Rule: r}, err
}

func (h *monitorHandler) GetAlertRule(ctx context.Context, req *evaluatorv1.GetAlertRuleRequest) (*evaluatorv1.GetAlertRuleResponse, error) {
	r, err := h.alerts.Get(ctx, req.GetName())
	return &evaluatorv1.GetAlertRuleResponse{Rule: r}, err
}

func (h *monitorHandler) ListAlertRules(ctx context.Context, req *evaluatorv1.ListAlertRulesRequest) (*evaluatorv1.ListAlertRulesResponse, error) {
	return h.alerts.List(ctx, req)
}

func (h *monitorHandler) UpdateAlertRule(ctx context.Context, req *evaluatorv1.UpdateAlertRuleRequest) (*evaluatorv1.UpdateAlertRuleResponse, error) {
	r, err := h.alerts.Update(ctx, req.GetRule(), req.GetUpdateMask())
	return &evaluatorv1.UpdateAlertRuleResponse{Rule: r}, err
}

func (h *monitorHandler) DeleteAlertRule(ctx context.Context, req *evaluatorv1.DeleteAlertRuleRequest) (*evaluatorv1.DeleteAlertRuleResponse, error) {
	return &evaluatorv1.DeleteAlertRuleResponse{}, h.alerts.Delete(ctx, req.GetName())
}

func (h *monitorHandler) ListAlerts(ctx context.Context, req *evaluatorv1.ListAlertsRequest) (*evaluatorv1.ListAlertsResponse, error) {
	return h.alerts.Alerts(ctx, req)
}

func (h *monitorHandler) GetAlert(ctx context.Context, req *evaluatorv1.GetAlertRequest) (*evaluatorv1.GetAlertResponse, error) {
	a, err := h.alerts.Alert(ctx, req.GetId())
	return &evaluatorv1.GetAlertResponse{Alert: a}, err
}

func (h *monitorHandler) ListNodeUsage(ctx context.Context, req *evaluatorv1.ListNodeUsageRequest) (*evaluatorv1.ListNodeUsageResponse, error) {
	if h.mon == nil {
		return nil, errNoJetStream
	}
	return h.mon.ListNodeUsage(ctx, req)
}

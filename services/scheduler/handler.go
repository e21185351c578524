package scheduler

import (
	"context"

	schedulerv1 "github.com/bmaas/bmaas/api/bmaas/scheduler/v1"
)

// handler adapts the gRPC API to the Scheduler; errors are mapped to
// status codes by the server's interceptor.
type handler struct {
	schedulerv1.UnimplementedSchedulerServiceServer
	s *Scheduler
}

func (h *handler) SubmitJob(ctx context.Context, req *schedulerv1.SubmitJobRequest) (*schedulerv1.SubmitJobResponse, error) {
	j, err := h.s.Submit(ctx, req.GetSpec())
	return &schedulerv1.SubmitJobResponse{Job: j}, err
}

func (h *handler) GetJob(ctx context.Context, req *schedulerv1.GetJobRequest) (*schedulerv1.GetJobResponse, error) {
	j, err := h.s.Get(ctx, req.GetId())
	return &schedulerv1.GetJobResponse{Job: j}, err
}

func (h *handler) ListJobs(ctx context.Context, req *schedulerv1.ListJobsRequest) (*schedulerv1.ListJobsResponse, error) {
	return h.s.List(ctx, req)
}

func (h *handler) CancelJob(ctx context.Context, req *schedulerv1.CancelJobRequest) (*schedulerv1.CancelJobResponse, error) {
	j, err := h.s.Cancel(ctx, req.GetId(), req.GetReason())
	return &schedulerv1.CancelJobResponse{Job: j}, err
}

func (h *handler) WatchJob(req *schedulerv1.WatchJobRequest, stream schedulerv1.SchedulerService_WatchJobServer) error {
	return h.s.Watch(stream.Context(), req.GetId(), func(j *schedulerv1.Job) error {
		return stream.Send(&schedulerv1.WatchJobResponse{Job: j})
	})
}

func (h *handler) GetJobLogs(req *schedulerv1.GetJobLogsRequest, stream schedulerv1.SchedulerService_GetJobLogsServer) error {
	return h.s.Logs(stream.Context(), req.GetId(), req.GetFollow(), int(req.GetTailLines()), func(lines []string) error {
		return stream.Send(&schedulerv1.GetJobLogsResponse{Lines: lines})
	})
}

func (h *handler) ListJobMetrics(ctx context.Context, req *schedulerv1.ListJobMetricsRequest) (*schedulerv1.ListJobMetricsResponse, error) {
	return h.s.ListMetrics(ctx, req)
}

func (h *handler) ListNodes(ctx context.Context, req *schedulerv1.ListNodesRequest) (*schedulerv1.ListNodesResponse, error) {
	return h.s.ListNodes(ctx, req)
}

func (h *handler) GetNode(ctx context.Context, req *schedulerv1.GetNodeRequest) (*schedulerv1.GetNodeResponse, error) {
	n, err := h.s.GetNode(ctx, req.GetName())
	return &schedulerv1.GetNodeResponse{Node: n}, err
}

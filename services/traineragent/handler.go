package traineragent

import (
	"context"
	"sort"
	"strings"

	agentv1 "github.com/bmaas/bmaas/api/bmaas/agent/v1"
)

// handler adapts the gRPC API to the Service.
type handler struct {
	agentv1.UnimplementedAgentServiceServer
	s *Service
}

func (h *handler) GetAgentStatus(context.Context, *agentv1.GetAgentStatusRequest) (*agentv1.GetAgentStatusResponse, error) {
	return &agentv1.GetAgentStatusResponse{Node: h.s.cfg.Node, Tasks: h.s.Tasks()}, nil
}

// Tasks lists the node's tasks: the assigned workers, running or ended,
// by job and rank.
func (s *Service) Tasks() []*agentv1.TaskStatus {
	s.mu.Lock()
	ws := make([]*worker, 0, len(s.workers))
	for _, w := range s.workers {
		ws = append(ws, w)
	}
	s.mu.Unlock()
	out := make([]*agentv1.TaskStatus, 0, len(ws))
	for _, w := range ws {
		st := w.snapshot()
		state := strings.TrimPrefix(st.State.String(), "TASK_STATE_")
		if w.fenced.Load() {
			state = "KILLED"
		}
		out = append(out, &agentv1.TaskStatus{JobId: st.JobId, Rank: st.Rank, State: state})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].JobId != out[j].JobId {
			return out[i].JobId < out[j].JobId
		}
		return out[i].Rank < out[j].Rank
	})
	return out
}

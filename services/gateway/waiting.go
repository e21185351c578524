package gateway

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	gatewayv1 "github.com/bmaas/bmaas/api/bmaas/gateway/v1"
	schedulerv1 "github.com/bmaas/bmaas/api/bmaas/scheduler/v1"
	"github.com/bmaas/bmaas/pkg/apierr"
	"github.com/bmaas/bmaas/pkg/store"
)

// holdRecheck is how often a held request looks at its deployment's
// status again (a ready replica wakes it at once).
const holdRecheck = 250 * time.Millisecond

// hold is a request waiting for a ready replica of a deployment.
type hold struct {
	s        *Service
	name     string
	start    time.Time
	until    time.Time
	fromZero bool
	count    *atomic.Int64 // the deployment's held requests
}

// newHold starts holding a request to name: until the cold-start timeout,
// or shortly before the request's deadline so that the caller learns why.
// It asks the leader (when it is this gateway) to reconcile now.
func (s *Service) newHold(ctx context.Context, name string) (*hold, error) {
	n, _ := s.held.LoadOrStore(name, new(atomic.Int64))
	count := n.(*atomic.Int64)
	if count.Add(1) > int64(s.cfg.MaxHeldRequests) {
		count.Add(-1)
		return nil, &tooManyHeld{name: name, max: s.cfg.MaxHeldRequests}
	}
	h := &hold{s: s, name: name, start: s.now(), count: count}
	h.until = h.start.Add(s.cfg.ColdStartTimeout)
	if dl, ok := ctx.Deadline(); ok {
		left := time.Until(dl)
		if end := h.start.Add(left - min(time.Second, left/10)); end.Before(h.until) {
			h.until = end
		}
	}
	d, _, err := s.depCache().Peek(ctx, deploymentKey(name))
	h.fromZero = err == nil && atZero(d)
	s.kick()
	return h, nil
}

// release ends the hold.
func (h *hold) release() { h.count.Add(-1) }

// tooManyHeld refuses a request to a deployment that holds
// gateway.max-held-requests already.
type tooManyHeld struct {
	name string
	max  int
}

func (e *tooManyHeld) Error() string {
	return fmt.Sprintf("deployment %q holds %d requests waiting for a replica already (gateway.max-held-requests): try again shortly", e.name, e.max)
}

// GRPCStatus makes it Unavailable, which clients retry.
func (e *tooManyHeld) GRPCStatus() *status.Status { return status.New(codes.Unavailable, e.Error()) }

// wait returns nil when the ready replicas changed or it is time to look
// again, and the error that answers the request when there is no point
// in waiting (the replicas cannot be placed, unless the request started
// the deployment from zero) or no time left.
func (h *hold) wait(ctx context.Context, changed <-chan struct{}) error {
	d, _, err := h.s.depCache().Peek(ctx, deploymentKey(h.name))
	if errors.Is(err, store.ErrNotFound) {
		return apierr.NotFound("deployment", h.name)
	}
	if err != nil {
		return err
	}
	why, stuck := waitReason(d)
	if stuck && !h.fromZero {
		return noReadyReplica(h.name, fmt.Sprintf("deployment %q has no ready replica: %s", h.name, why))
	}
	left := h.until.Sub(h.s.now())
	if left <= 0 {
		return noReadyReplica(h.name, fmt.Sprintf("deployment %q has no ready replica after %s: %s",
			h.name, h.s.now().Sub(h.start).Round(100*time.Millisecond), why))
	}
	t := time.NewTimer(min(left, holdRecheck))
	defer t.Stop()
	select {
	case <-changed:
	case <-t.C:
	case <-ctx.Done():
		return status.Errorf(codes.DeadlineExceeded, "deployment %q has no ready replica yet: %s", h.name, why)
	}
	return nil
}

// atZero reports whether d is scaled to zero: a request to it is held
// while a replica starts.
func atZero(d *gatewayv1.Deployment) bool {
	return d.GetState() == "IDLE" || (d.GetStatus() != nil && d.GetStatus().GetDesiredReplicas() == 0)
}

// waitReason says, from d's status, why it has no ready replica, and
// whether that is stuck: every replica it has waits in the scheduler's
// queue because no node can hold it or none has room, or it has none
// because its model reference does not resolve. A replica that is
// placed, starting, restarting or not yet considered by the scheduler is
// not stuck.
func waitReason(d *gatewayv1.Deployment) (why string, stuck bool) {
	st := d.GetStatus()
	if atZero(d) {
		return "scaled to zero", false
	}
	var waiting, starting []string
	for _, r := range st.GetReplicas() {
		if r.GetReady() {
			continue
		}
		state := strings.TrimPrefix(r.GetJobState(), "JOB_STATE_")
		line := fmt.Sprintf("replica %s %s", r.GetId(), state)
		if r.GetReason() != "" {
			line += ": " + r.GetReason()
		}
		if r.GetJobState() == schedulerv1.JobState_JOB_STATE_QUEUED.String() && unplaceable(r.GetReason()) {
			waiting = append(waiting, line)
			continue
		}
		starting = append(starting, line)
	}
	switch {
	case len(starting) > 0:
		return strings.Join(append(starting, waiting...), "; ") + " (starting)", false
	case len(waiting) > 0:
		return strings.Join(waiting, "; "), true
	case st.GetMessage() != "":
		return st.GetMessage(), true
	}
	return "no replica started yet", false
}

// NoReadyReplica is the ErrorInfo reason of an Unavailable answer that
// the gateway gave because a deployment has no ready replica: a client
// tells it from a server it cannot reach.
const NoReadyReplica = "NO_READY_REPLICA"

func noReadyReplica(dep, msg string) error {
	s, err := status.New(codes.Unavailable, msg).WithDetails(&errdetails.ErrorInfo{Reason: NoReadyReplica, Domain: "bmaas",
		Metadata: map[string]string{"deployment": dep}})
	if err != nil {
		return status.Error(codes.Unavailable, msg)
	}
	return s.Err()
}

// unplaceable: the scheduler's reasons for a job it cannot place (its
// package documentation names them).
func unplaceable(reason string) bool {
	return strings.HasPrefix(reason, "Unschedulable") || strings.HasPrefix(reason, "Waiting for capacity")
}

// replicaMessage is the status message of a deployment the leader sees
// with no ready replica though it wants some: its replicas' reasons.
func replicaMessage(replicas []*gatewayv1.Replica) string {
	var out []string
	for _, r := range replicas {
		if !r.GetReady() && r.GetReason() != "" {
			out = append(out, fmt.Sprintf("replica %s %s: %s", r.GetId(), strings.TrimPrefix(r.GetJobState(), "JOB_STATE_"), r.GetReason()))
		}
	}
	if len(out) == 0 {
		return ""
	}
	return "waiting for a replica: " + strings.Join(out, "; ")
}

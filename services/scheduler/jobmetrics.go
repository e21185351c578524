package scheduler

import (
	"context"
	"encoding/json"
	"io"
	"math"
	"strconv"

	"google.golang.org/protobuf/types/known/timestamppb"

	schedulerv1 "github.com/bmaas/bmaas/api/bmaas/scheduler/v1"
	"github.com/bmaas/bmaas/pkg/apierr"
	"github.com/bmaas/bmaas/pkg/events"
	"github.com/bmaas/bmaas/pkg/store"
)

// headerAttempt is the event header in which a trainer agent names the
// attempt of a metrics line (traineragent.HeaderAttempt).
const headerAttempt = "Bmaas-Attempt"

// ListMetrics pages through the metrics lines a job's workers published
// to BMAAS_METRICS (subject bmaas.metrics.<job>.<rank>), oldest first.
// The samples live only in that stream, not in etcd: the job record
// keeps the newest values alone. A page token is the stream sequence to
// read on from, so the resume token of the last page reads what a running
// job reports next.
func (s *Scheduler) ListMetrics(ctx context.Context, req *schedulerv1.ListJobMetricsRequest) (*schedulerv1.ListJobMetricsResponse, error) {
	size, err := store.PageSize("page_size", req.GetPageSize())
	if err != nil {
		return nil, err
	}
	start, err := metricsPageToken(req.GetPageToken())
	if err != nil {
		return nil, err
	}
	id := req.GetId()
	if _, _, err := s.get(ctx, id); err != nil {
		return nil, err
	}
	if s.bus == nil {
		return nil, apierr.Precondition("metrics of job %s: the scheduler has no event bus", id)
	}
	out := &schedulerv1.ListJobMetricsResponse{ResumeToken: req.GetPageToken()}
	filter := events.SubjectPrefix + "." + events.KindMetrics + "." + id + ".>"
	err = s.bus.ReplayFrom(ctx, events.StreamMetrics, filter, start, false, func(e events.Event) error {
		if len(out.Samples) == size {
			out.NextPageToken = strconv.FormatUint(e.Seq, 10)
			return io.EOF
		}
		out.ResumeToken = strconv.FormatUint(e.Seq+1, 10)
		if smp, ok := metricSample(e); ok {
			out.Samples = append(out.Samples, smp)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// metricsPageToken decodes a page token: a stream sequence, 0 for none.
func metricsPageToken(tok string) (uint64, error) {
	if tok == "" {
		return 0, nil
	}
	seq, err := strconv.ParseUint(tok, 10, 64)
	if err != nil || seq == 0 {
		return 0, apierr.Invalid("page_token", "not a token of this list: %q", tok)
	}
	return seq, nil
}

// metricSample reads one published metrics line: {"step":..,"split":..,
// "final":..,"attempt":..,"<name>":<number>,...}. Fields that are not
// numbers (and NaN or infinite ones) are left out; a line that is not a
// JSON object is skipped, as the agent already refused such lines.
func metricSample(e events.Event) (*schedulerv1.JobMetricSample, bool) {
	var raw map[string]any
	if err := json.Unmarshal(e.Data, &raw); err != nil || raw == nil {
		return nil, false
	}
	smp := &schedulerv1.JobMetricSample{Values: map[string]float64{}, Time: timestamppb.New(e.Time)}
	if r, err := strconv.ParseInt(e.Type, 10, 32); err == nil {
		smp.Rank = int32(r)
	}
	if a, err := strconv.ParseInt(e.Headers[headerAttempt], 10, 32); err == nil {
		smp.Attempt = int32(a)
	}
	smp.Split, _ = raw["split"].(string)
	smp.Final, _ = raw["final"].(bool)
	for k, v := range raw {
		f, ok := v.(float64)
		switch {
		case !ok || math.IsNaN(f) || math.IsInf(f, 0):
		case k == "step":
			smp.Step, smp.HasStep = int64(f), true
		case k == "attempt":
			if smp.Attempt == 0 {
				smp.Attempt = int32(f)
			}
		default:
			smp.Values[k] = f
		}
	}
	return smp, true
}

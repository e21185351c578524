package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	schedulerv1 "github.com/bmaas/bmaas/api/bmaas/scheduler/v1"
	"github.com/bmaas/bmaas/pkg/ml/train"
	"github.com/spf13/cobra"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// terminal reports whether a job has ended.
func terminal(s schedulerv1.JobState) bool {
	return s == schedulerv1.JobState_JOB_STATE_SUCCEEDED || s == schedulerv1.JobState_JOB_STATE_FAILED ||
		s == schedulerv1.JobState_JOB_STATE_CANCELLED
}

// unschedulable reports whether the scheduler found no node that could
// ever fit the job; it stays queued, but waiting for it would hang.
func unschedulable(j *schedulerv1.Job) bool {
	return j.GetState() == schedulerv1.JobState_JOB_STATE_QUEUED && strings.HasPrefix(j.GetReason(), "Unschedulable")
}

// jobEndError is the error of a followed job that did not succeed.
type jobEndError struct {
	id, state, reason string
}

func (e *jobEndError) Error() string {
	return fmt.Sprintf("job %s %s: %s", e.id, e.state, orDash(e.reason))
}

// waitJob follows a job until it ends, drawing its progress on stderr,
// then prints it. It survives a scheduler failover: a broken watch is
// resumed (for up to two minutes of failures) after re-reading the job.
func waitJob(ctx context.Context, g *globals, cmd *cobra.Command, c *client, job *schedulerv1.Job) error {
	stderr := cmd.ErrOrStderr()
	w := newJobWatcher(stderr, isTerminal(stderr), job)
	w.update(job)
	last, failingSince, backoff := job, time.Time{}, 250*time.Millisecond
	for !terminal(last.GetState()) && !unschedulable(last) {
		err := watchOnce(ctx, c, last.GetId(), func(j *schedulerv1.Job) bool {
			last = j
			w.update(j)
			return terminal(j.GetState()) || unschedulable(j)
		})
		if terminal(last.GetState()) || unschedulable(last) {
			break
		}
		w.finish()
		if ctx.Err() != nil {
			fmt.Fprintf(stderr, "stopped watching; job %s goes on (bmaas job watch %s)\n", last.GetId(), last.GetId())
			return ctx.Err()
		}
		if !retryable(err) {
			return err
		}
		if failingSince.IsZero() {
			failingSince = time.Now()
		} else if time.Since(failingSince) > 2*time.Minute {
			return err
		}
		select {
		case <-ctx.Done():
			continue
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
		cctx, cancel := c.call(ctx)
		resp, gerr := c.scheduler().GetJob(cctx, &schedulerv1.GetJobRequest{Id: last.GetId()})
		cancel()
		if gerr == nil {
			last, failingSince, backoff = resp.GetJob(), time.Time{}, 250*time.Millisecond
			w.update(last)
		}
	}
	w.finish()
	if err := printJob(g.printer(cmd.OutOrStdout()), last); err != nil {
		return err
	}
	if unschedulable(last) {
		return fmt.Errorf("job %s cannot be placed: %s (it stays queued; cancel it with bmaas job cancel %s)",
			last.GetId(), last.GetReason(), last.GetId())
	}
	if last.GetState() != schedulerv1.JobState_JOB_STATE_SUCCEEDED {
		return &jobEndError{id: last.GetId(), state: stateName(last.GetState()), reason: last.GetReason()}
	}
	return nil
}

// watchOnce streams the job's updates to fn until fn returns true or the
// stream ends; io.EOF means the server closed it.
func watchOnce(ctx context.Context, c *client, id string, fn func(*schedulerv1.Job) bool) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := c.scheduler().WatchJob(ctx, &schedulerv1.WatchJobRequest{Id: id})
	if err != nil {
		return err
	}
	for {
		resp, err := stream.Recv()
		if err != nil {
			return err
		}
		if resp.GetJob() != nil && fn(resp.GetJob()) {
			return nil
		}
	}
}

// retryable reports whether a broken watch is worth resuming: the stream
// ended early or the server is failing over.
func retryable(err error) bool {
	if errors.Is(err, io.EOF) {
		return true
	}
	switch status.Code(err) {
	case codes.Unavailable, codes.Aborted, codes.Unknown, codes.Internal, codes.DeadlineExceeded:
		return true
	}
	return false
}

// jobWatcher prints a job's state changes as lines and, on a terminal, a
// live progress line below them.
type jobWatcher struct {
	w        io.Writer
	live     bool
	unit     string
	total    int64
	state    schedulerv1.JobState
	reason   string
	restarts int32
	start    time.Time
	last     time.Time
	drawn    bool
}

func newJobWatcher(w io.Writer, live bool, j *schedulerv1.Job) *jobWatcher {
	unit, total := progressUnit(j.GetSpec())
	return &jobWatcher{w: w, live: live, unit: unit, total: total, start: time.Now()}
}

func (w *jobWatcher) update(j *schedulerv1.Job) {
	changed := j.GetState() != w.state || j.GetReason() != w.reason || j.GetRestarts() != w.restarts
	if changed {
		w.clear()
		w.state, w.reason, w.restarts = j.GetState(), j.GetReason(), j.GetRestarts()
		line := fmt.Sprintf("job %s: %s", j.GetId(), stateName(j.GetState()))
		if j.GetRestarts() > 0 {
			line += fmt.Sprintf(" (restart %d)", j.GetRestarts())
		}
		fmt.Fprintln(w.w, line+prefixed(": ", j.GetReason()))
	}
	if !w.live || terminal(j.GetState()) || (!changed && time.Since(w.last) < 100*time.Millisecond) {
		return
	}
	w.last, w.drawn = time.Now(), true
	fmt.Fprintf(w.w, "\r%s\x1b[K", progressLine(j, w.unit, w.total, time.Since(w.start)))
}

func (w *jobWatcher) clear() {
	if w.drawn {
		fmt.Fprint(w.w, "\r\x1b[K")
		w.drawn = false
	}
}

func (w *jobWatcher) finish() { w.clear() }

// progressUnit names a job's steps and how many it will run, when known:
// epochs of an mlp or a process job (hyperparameter epochs), gbdt rounds.
func progressUnit(s *schedulerv1.JobSpec) (string, int64) {
	params, unit := s.GetProcess().GetHyperparameters(), "epoch"
	if b := s.GetBuiltin(); b != nil {
		p, err := train.ParseParams(b.GetAlgorithm(), b.GetHyperparameters())
		params, unit = p.Map(), map[string]string{"mlp": "epoch", "gbdt": "round"}[b.GetAlgorithm()]
		if err != nil || unit == "" {
			return "step", 0
		}
	}
	total, _ := strconv.ParseInt(params[map[string]string{"epoch": "epochs", "round": "rounds"}[unit]], 10, 64)
	return unit, total
}

// progressLine renders e.g.
// "RUNNING  epoch 12/100 [==>       ]  loss 0.2345  validation_accuracy 0.9649  12s".
func progressLine(j *schedulerv1.Job, unit string, total int64, elapsed time.Duration) string {
	var b strings.Builder
	b.WriteString(stateName(j.GetState()))
	switch step := j.GetStep(); {
	case total > 0:
		const width = 20
		fill := int(min(max(float64(step)/float64(total), 0), 1) * width)
		fmt.Fprintf(&b, "  %s %d/%d [%s%s]", unit, step, total, strings.Repeat("=", fill), strings.Repeat(" ", width-fill))
	case step > 0:
		fmt.Fprintf(&b, "  %s %d", unit, step)
	}
	if m := metricSummary(j.GetMetrics()); m != "" {
		b.WriteString("  " + m)
	}
	fmt.Fprintf(&b, "  %s", elapsed.Round(time.Second))
	return b.String()
}

// metricSummary picks the training loss and up to two validation metrics.
func metricSummary(m map[string]float64) string {
	var parts []string
	for _, k := range []string{"train_loss", "train.loss", "train/loss", "loss"} {
		if v, ok := m[k]; ok {
			parts = append(parts, "loss "+formatFloat(v))
			break
		}
	}
	var val []string
	for k := range m {
		if strings.HasPrefix(k, "validation") || strings.HasPrefix(k, "val_") || strings.HasPrefix(k, "val.") {
			val = append(val, k)
		}
	}
	sort.Strings(val)
	for _, k := range val[:min(len(val), 2)] {
		parts = append(parts, k+" "+formatFloat(m[k]))
	}
	return strings.Join(parts, "  ")
}

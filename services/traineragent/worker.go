package traineragent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	schedulerv1 "github.com/bmaas/bmaas/api/bmaas/scheduler/v1"
)

// worker runs one assignment: one rank of one attempt of a job.
type worker struct {
	s         *Service
	key       string
	a         *schedulerv1.Assignment
	createRev int64
	modRev    int64
	log       *slog.Logger
	dir       string

	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
	// fenced: the node lost its lease; kill at once, report nothing.
	fenced atomic.Bool
	// holdUntil (under Service.mu): a fenced assignment left unchanged
	// does not run again before this time.
	holdUntil time.Time
	ended     atomic.Bool
	// models are the model cache entries the task holds until it ends.
	models modelHolds

	wmu    sync.Mutex // serialises status writes
	mu     sync.Mutex
	status *schedulerv1.TaskStatus
	dirty  bool
}

// grace is the time between SIGTERM and SIGKILL when the task stops:
// its job's termination_grace_seconds, or --trainer-agent.stop-grace. A
// model-server replica's is the agent's.
func (w *worker) grace() time.Duration {
	if g := w.a.GetSpec().GetTerminationGraceSeconds(); g > 0 && w.a.GetSpec().GetServing() == nil {
		return time.Duration(g) * time.Second
	}
	return w.s.cfg.StopGrace
}

func newWorker(s *Service, key string, a *schedulerv1.Assignment, createRev, modRev int64) *worker {
	ctx, cancel := context.WithCancel(context.Background())
	dir := filepath.Join(s.cfg.workDir(), a.JobId, fmt.Sprintf("rank-%d-attempt-%d", a.Rank, a.Attempt))
	return &worker{s: s, key: key, a: a, createRev: createRev, modRev: modRev, dir: dir,
		log: s.log.With("job", a.JobId, "rank", a.Rank, "attempt", a.Attempt), ctx: ctx, cancel: cancel,
		done:   make(chan struct{}),
		status: &schedulerv1.TaskStatus{JobId: a.JobId, Rank: a.Rank, Attempt: a.Attempt, Node: s.cfg.Node, Term: a.Term}}
}

// stop cancels the worker; kill skips the grace period (self-fencing).
func (w *worker) stop(kill bool) {
	if kill {
		w.fenced.Store(true)
	}
	w.cancel()
}

// finished reports whether the worker's run has ended.
func (w *worker) finished() bool { return w.ended.Load() }

func (w *worker) setTerm(term int64) {
	w.mu.Lock()
	w.status.Term = term
	w.mu.Unlock()
}

// run waits for the previous worker of the same key to end, then runs
// the task and reports its end.
func (w *worker) run(prev *worker) {
	defer close(w.done)
	defer w.models.release()
	defer w.ended.Store(true)
	defer w.cancel()
	if prev != nil {
		<-prev.done
	}
	if w.ctx.Err() != nil {
		return
	}
	switch w.earlierRun(prev == nil) {
	case earlierEnded:
		return
	case earlierLost:
		w.reportLost()
		return
	}
	w.log.Info("task starting")
	w.update(func(st *schedulerv1.TaskStatus) {
		st.State, st.StartTime = schedulerv1.TaskState_TASK_STATE_STARTING, w.now()
	})
	w.flush()
	go w.flushLoop()
	version, err := w.execute()
	switch {
	case w.fenced.Load():
		w.log.Warn("task killed: node lease lost")
		return
	case w.ctx.Err() != nil:
		w.log.Info("task stopped: assignment removed")
		return
	case err != nil:
		w.log.Warn("task failed", "err", err)
		w.update(func(st *schedulerv1.TaskStatus) {
			st.State, st.Message, st.EndTime = schedulerv1.TaskState_TASK_STATE_FAILED, err.Error(), w.now()
			var ee *exitError
			if errors.As(err, &ee) {
				st.ExitCode = int32(ee.code)
			}
		})
	default:
		w.log.Info("task succeeded", "version", version)
		w.update(func(st *schedulerv1.TaskStatus) {
			st.State, st.ModelVersion, st.EndTime = schedulerv1.TaskState_TASK_STATE_SUCCEEDED, version, w.now()
		})
	}
	w.flush()
}

// execute prepares the task's directory and runs its runtime.
func (w *worker) execute() (int64, error) {
	if err := os.RemoveAll(w.dir); err != nil {
		return 0, fmt.Errorf("clean work dir: %w", err)
	}
	if err := os.MkdirAll(w.dir, 0o755); err != nil {
		return 0, fmt.Errorf("work dir: %w", err)
	}
	sk, err := newSink(w.s.deps.Bus, w.s.log, filepath.Join(w.dir, "task.log"), w.a.JobId, w.a.Rank, w.a.Attempt)
	if err != nil {
		return 0, err
	}
	defer sk.close()
	// The first line of every attempt: the log stream of a job holds them all.
	sk.logf("attempt %d of job %s, rank %d, on node %s", w.a.Attempt, w.a.JobId, w.a.Rank, w.s.cfg.Node)
	version, err := w.runtime(sk)
	sk.flush(w.ctx)
	if err != nil {
		if tail := sk.tail(); tail != "" {
			err = fmt.Errorf("%w\n%s", err, tail)
		}
	}
	return version, err
}

func (w *worker) runtime(sk *sink) (int64, error) {
	spec := w.a.GetSpec()
	switch {
	case spec.GetBuiltin() != nil:
		return w.runBuiltin(sk, spec.GetBuiltin())
	case spec.GetProcess() != nil:
		return w.runProcess(sk, spec.GetProcess())
	case spec.GetServing() != nil:
		return w.runServing(sk, spec.GetServing())
	}
	return 0, errors.New("the job spec names no runtime (builtin or process)")
}

func (w *worker) now() *timestamppb.Timestamp { return timestamppb.New(w.s.deps.Now()) }

func (w *worker) rank() string { return strconv.Itoa(int(w.a.Rank)) }

// exitError is a process that exited with a non-zero code.
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

// contextFor bounds one transfer of the worker.
func contextFor(w *worker) (context.Context, context.CancelFunc) {
	return context.WithTimeout(w.ctx, fetchTimeout)
}

// cleanup removes the task's files but its log once the worker ended.
func (w *worker) cleanup() {
	<-w.done
	entries, err := os.ReadDir(w.dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		if e.Name() != "task.log" {
			_ = os.RemoveAll(filepath.Join(w.dir, e.Name()))
		}
	}
}

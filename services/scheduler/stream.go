package scheduler

import (
	"context"
	"fmt"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/protobuf/proto"

	schedulerv1 "github.com/bmaas/bmaas/api/bmaas/scheduler/v1"
	"github.com/bmaas/bmaas/pkg/apierr"
	"github.com/bmaas/bmaas/pkg/events"
	"github.com/bmaas/bmaas/pkg/store"
	"github.com/bmaas/bmaas/services/scheduler/schedkeys"
)

// Watch sends the job as it is, then every change of it, until it ends
// (the last message carries the final state) or ctx is done.
func (s *Scheduler) Watch(ctx context.Context, id string, send func(*schedulerv1.Job) error) error {
	j, rev, err := s.get(ctx, id)
	if err != nil {
		return err
	}
	if err := send(j); err != nil || terminal(j.State) {
		return err
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for wr := range s.cli.Watch(clientv3.WithRequireLeader(wctx), schedkeys.Job(id), clientv3.WithRev(rev+1)) {
		if err := wr.Err(); err != nil {
			return fmt.Errorf("watch job %s: %w", id, err)
		}
		for _, ev := range wr.Events {
			if ev.Type == clientv3.EventTypeDelete {
				return nil
			}
			var j schedulerv1.Job
			if err := proto.Unmarshal(ev.Kv.Value, &j); err != nil {
				return fmt.Errorf("decode job %s: %w", id, err)
			}
			j.Etag = store.Etag(ev.Kv.ModRevision)
			if err := send(&j); err != nil || terminal(j.State) {
				return err
			}
		}
	}
	return ctx.Err()
}

// logBatch is how many lines one message of a replay carries at most.
const logBatch = 256

// Logs sends the job's log lines (all ranks, in the order stored), only
// the last tail of them when tail > 0. With follow it then waits for more
// until the job has ended and the stream is drained, like tail -f.
func (s *Scheduler) Logs(ctx context.Context, id string, follow bool, tail int, send func([]string) error) error {
	if tail < 0 {
		return apierr.Invalid("tail_lines", "must not be negative, got %d", tail)
	}
	j, _, err := s.get(ctx, id)
	if err != nil {
		return err
	}
	if s.bus == nil {
		return fmt.Errorf("logs of job %s: no event bus", id)
	}
	filter := events.SubjectPrefix + "." + events.KindLogs + "." + id + ".>"
	// What exists now: kept whole, or the last tail lines in a ring.
	var lines []string
	var next uint64
	err = s.bus.Replay(ctx, events.StreamLogs, filter, false, func(e events.Event) error {
		next = e.Seq + 1
		lines = append(lines, string(e.Data))
		if tail > 0 && len(lines) > 2*tail {
			lines = append(lines[:0], lines[len(lines)-tail:]...)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if tail > 0 && len(lines) > tail {
		lines = lines[len(lines)-tail:]
	}
	for len(lines) > 0 {
		n := min(len(lines), logBatch)
		if err := send(lines[:n]); err != nil {
			return err
		}
		lines = lines[n:]
	}
	if !follow || terminal(j.State) {
		return nil
	}
	// Follow until the job ends, then drain what was stored meanwhile.
	fctx, stop := context.WithCancel(ctx)
	defer stop()
	go func() {
		_ = s.Watch(fctx, id, func(j *schedulerv1.Job) error {
			if terminal(j.State) {
				stop()
			}
			return nil
		})
	}()
	err = s.bus.ReplayFrom(fctx, events.StreamLogs, filter, next, true, func(e events.Event) error {
		next = e.Seq + 1
		return send([]string{string(e.Data)})
	})
	if err != nil || ctx.Err() != nil {
		return err
	}
	return s.bus.ReplayFrom(ctx, events.StreamLogs, filter, next, false, func(e events.Event) error {
		return send([]string{string(e.Data)})
	})
}

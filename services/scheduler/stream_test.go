//go:build integration

package scheduler

import (
	"fmt"
	"io"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	schedulerv1 "github.com/bmaas/bmaas/api/bmaas/scheduler/v1"
	"github.com/bmaas/bmaas/pkg/events"
)

func (e *env) logLine(job string, rank int, line string) {
	require.NoError(e.t, e.bus.Publish(e.t.Context(), events.Event{Kind: events.KindLogs, Key: job, Type: fmt.Sprint(rank), Data: []byte(line)}))
}

func readLogs(t *testing.T, s *sched, req *schedulerv1.GetJobLogsRequest, each func([]string)) {
	t.Helper()
	stream, err := s.c.GetJobLogs(t.Context(), req)
	require.NoError(t, err)
	for {
		msg, err := stream.Recv()
		if err == io.EOF {
			return
		}
		require.NoError(t, err)
		each(msg.Lines)
	}
}

func TestLogs(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false)
	s := e.start("a", nil)
	id := submit(t, s, spec(func(s *schedulerv1.JobSpec) { s.Resources.Gpus = 64 }))
	other := submit(t, s, spec(func(s *schedulerv1.JobSpec) { s.Resources.Gpus = 64 }))
	for i := range 5 {
		e.logLine(id, i%2, fmt.Sprintf("line %d", i))
	}
	e.logLine(other, 0, "not mine")

	var all, tail []string
	readLogs(t, s, &schedulerv1.GetJobLogsRequest{Id: id}, func(l []string) { all = append(all, l...) })
	require.Equal(t, []string{"line 0", "line 1", "line 2", "line 3", "line 4"}, all)
	readLogs(t, s, &schedulerv1.GetJobLogsRequest{Id: id, TailLines: 2}, func(l []string) { tail = append(tail, l...) })
	require.Equal(t, []string{"line 3", "line 4"}, tail)

	// Follow: the tail, then new lines, until the job ends.
	got := make(chan string, 100)
	done := make(chan struct{})
	go func() {
		defer close(done)
		readLogs(t, s, &schedulerv1.GetJobLogsRequest{Id: id, Follow: true, TailLines: 1}, func(l []string) {
			for _, x := range l {
				got <- x
			}
		})
	}()
	require.Equal(t, "line 4", <-got)
	e.logLine(id, 0, "line 5")
	require.Equal(t, "line 5", <-got)
	_, err := s.c.CancelJob(t.Context(), &schedulerv1.CancelJobRequest{Id: id})
	require.NoError(t, err)
	<-done

	// Follow on an ended job sends what exists and ends; a negative tail is refused.
	var none []string
	readLogs(t, s, &schedulerv1.GetJobLogsRequest{Id: id, Follow: true}, func(l []string) { none = append(none, l...) })
	require.Len(t, none, 6, "an ended job's logs end the stream even with follow")
	stream, err := s.c.GetJobLogs(t.Context(), &schedulerv1.GetJobLogsRequest{Id: id, TailLines: -1})
	require.NoError(t, err)
	_, err = stream.Recv()
	require.Equal(t, codes.InvalidArgument, status.Code(err))
}

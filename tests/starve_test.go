//go:build integration

package tests

import (
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
	schedulerv1 "github.com/bmaas/bmaas/api/bmaas/scheduler/v1"
	"github.com/bmaas/bmaas/tests/harness"
)

// beatScript notes each start of the task, then touches a file every
// 100 ms until it is stopped.
const beatScript = `echo started >> "$BMAAS_OUTPUT_DIR/starts"
while :; do touch "$BMAAS_OUTPUT_DIR/beat"; sleep 0.1; done`

// TestStarvedSingleProcessKillsNoWorker runs bmaas up (in this process)
// with a process job and then starves the process: busy goroutines
// beside it keep its own goroutines (etcd's, the lease keep-alives)
// waiting for seconds. The agent is healthy all along: its worker must
// not be killed, nor the job moved to another attempt. Not parallel: the
// starvation would slow every other test of the binary.
func TestStarvedSingleProcessKillsNoWorker(t *testing.T) {
	c := harness.Start(t)
	ctx := t.Context()
	sc := schedulerv1.NewSchedulerServiceClient(c.Conn)
	_, err := c.Registry.CreateModel(ctx, &registryv1.CreateModelRequest{Model: &registryv1.Model{Name: "starve"}})
	require.NoError(t, err)
	sub, err := sc.SubmitJob(ctx, &schedulerv1.SubmitJobRequest{Spec: &schedulerv1.JobSpec{Model: "starve",
		Runtime: &schedulerv1.JobSpec_Process{Process: &schedulerv1.ProcessRuntime{Command: "/bin/sh", Args: []string{"-c", beatScript}}}}})
	require.NoError(t, err)
	id := sub.Job.Id
	var running *schedulerv1.Job
	require.Eventually(t, func() bool {
		j, err := sc.GetJob(ctx, &schedulerv1.GetJobRequest{Id: id})
		running = j.GetJob()
		return err == nil && running.State == schedulerv1.JobState_JOB_STATE_RUNNING
	}, time.Minute, 20*time.Millisecond)
	out := taskOutput(t, c, id)

	// Starve: many more runnable goroutines than processors, for three
	// node lease TTLs.
	var stop atomic.Bool
	var wg sync.WaitGroup
	for range 400 * runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for x := 0; !stop.Load(); x++ {
			}
		})
	}
	time.Sleep(15 * time.Second) // how long the load lasts; nothing is awaited
	stop.Store(true)
	wg.Wait()

	// The task's process lives on, and was never started again.
	beat := func() time.Time {
		st, err := os.Stat(filepath.Join(out, "beat"))
		require.NoError(t, err)
		return st.ModTime()
	}
	after := beat()
	require.Eventually(t, func() bool { return beat().After(after) }, 10*time.Second, 20*time.Millisecond,
		"the task's process no longer runs")
	starts, err := os.ReadFile(filepath.Join(out, "starts"))
	require.NoError(t, err)
	require.Equal(t, "started\n", string(starts), "the task's process was started again")
	j, err := sc.GetJob(ctx, &schedulerv1.GetJobRequest{Id: id})
	require.NoError(t, err)
	require.Equal(t, schedulerv1.JobState_JOB_STATE_RUNNING, j.Job.State, "reason: %s", j.Job.Reason)
	require.Equal(t, running.Attempt, j.Job.Attempt, "the job was moved to a new attempt: %v", j.Job.History)
	_, err = sc.CancelJob(ctx, &schedulerv1.CancelJobRequest{Id: id})
	require.NoError(t, err)
}

// taskOutput is the output directory of the job's rank 0, attempt 1,
// once its process has started.
func taskOutput(t *testing.T, c *harness.Cluster, job string) string {
	t.Helper()
	out := filepath.Join(c.Config.DataDir, "agent", job, "rank-0-attempt-1", "output")
	require.Eventually(t, func() bool {
		_, err := os.Stat(filepath.Join(out, "beat"))
		return err == nil
	}, 30*time.Second, 20*time.Millisecond)
	return out
}

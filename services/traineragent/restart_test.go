//go:build integration

package traineragent_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	schedulerv1 "github.com/bmaas/bmaas/api/bmaas/scheduler/v1"
	"github.com/bmaas/bmaas/services/traineragent"
)

// An agent that restarts on its work directory and finds an attempt it
// had started (status RUNNING on this node) does not run it again under
// the same attempt: its process went with the old agent. It reports the
// task CANCELLED, saying why, so that the scheduler starts a new attempt,
// and leaves the old run's files alone.
func TestRestartedAgentReportsTheLostTask(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	dir := t.TempDir()
	cfg := func(c *traineragent.Config) { c.WorkDir, c.StopGrace = dir, 100*time.Millisecond }
	first := e.agent("r1", cfg)
	pidFile := filepath.Join(t.TempDir(), "pids")
	pids := e.startStubbornAt("r1", "jobr", pidFile)
	// The agent goes away without reporting the task (as after kill -9,
	// the status still says RUNNING), its process with it.
	first.stop()
	<-first.done
	gone(t, pids, 5*time.Second)
	require.Equal(t, schedulerv1.TaskState_TASK_STATE_RUNNING, e.task("jobr", 0).State)

	e.agent("r1", cfg)
	st := e.waitTask("jobr", 0, schedulerv1.TaskState_TASK_STATE_CANCELLED, 10*time.Second)
	require.Equal(t, "agent restarted: the task's process was lost", st.Message)
	require.Equal(t, "r1", st.Node)
	require.NotNil(t, st.EndTime)
	// The task did not run again: none of its processes lives, and no
	// second pair was recorded.
	_, own := procsWith("STUBBORN=" + stubbornMarker(t, "jobr"))
	require.Empty(t, own, "the task ran again")
	b, err := os.ReadFile(pidFile)
	require.NoError(t, err)
	require.Len(t, strings.Fields(string(b)), 2, "the task ran again")
	log, err := os.ReadFile(filepath.Join(dir, "jobr", "rank-0-attempt-0", "task.log"))
	require.NoError(t, err)
	require.Contains(t, string(log), "started", "the lost run's log is kept")
}

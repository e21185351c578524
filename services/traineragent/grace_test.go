//go:build integration

package traineragent_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	schedulerv1 "github.com/bmaas/bmaas/api/bmaas/scheduler/v1"
	"github.com/bmaas/bmaas/services/traineragent"
)

// saveOnTerm takes 5 s after SIGTERM to write its checkpoint (longer than
// the agent's default grace, and than the 4 s it was once capped at),
// then exits.
const saveOnTerm = `trap 'sleep 5; echo saved > "$OUT/saved"; exit 0' TERM
touch "$OUT/trapped"
while :; do sleep 1 & wait; done
`

// TestJobTerminationGraceLetsATaskSaveAfterSIGTERM: a process task whose
// job sets termination_grace_seconds (6 s) gets SIGTERM and has its
// whole grace to write a file before SIGKILL; the same task without it
// is killed after the agent's default grace (3 s), before it saves.
func TestJobTerminationGraceLetsATaskSaveAfterSIGTERM(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.agent("g1", func(c *traineragent.Config) { c.Sandbox = "none" })
	require.Equal(t, 3*time.Second, traineragent.DefaultConfig().StopGrace)
	run := func(job string, grace int32) string {
		out := t.TempDir()
		e.assign(&schedulerv1.Assignment{JobId: job, Node: "g1", Term: 1, Spec: &schedulerv1.JobSpec{Model: "x",
			TerminationGraceSeconds: grace, Runtime: &schedulerv1.JobSpec_Process{Process: &schedulerv1.ProcessRuntime{
				Command: "/bin/sh", Args: []string{"-c", saveOnTerm}, Env: map[string]string{"OUT": out}}}}})
		e.waitTask(job, 0, schedulerv1.TaskState_TASK_STATE_RUNNING, 10*time.Second)
		return filepath.Join(out, "saved")
	}
	long, short := run("jobgrace", 6), run("jobdefault", 0)
	// Both trap SIGTERM before they are stopped.
	require.Eventually(t, func() bool {
		for _, f := range []string{long, short} {
			if _, err := os.Stat(filepath.Join(filepath.Dir(f), "trapped")); err != nil {
				return false
			}
		}
		return true
	}, 10*time.Second, 10*time.Millisecond)
	start := time.Now()
	e.unassign(&schedulerv1.Assignment{JobId: "jobgrace", Node: "g1"})
	e.unassign(&schedulerv1.Assignment{JobId: "jobdefault", Node: "g1"})
	require.Eventually(t, func() bool {
		b, err := os.ReadFile(long)
		return err == nil && string(b) == "saved\n"
	}, 10*time.Second, 50*time.Millisecond, "the task with a 6 s grace saved after SIGTERM")
	require.GreaterOrEqual(t, time.Since(start), 4*time.Second)
	_, err := os.Stat(short)
	require.ErrorIs(t, err, os.ErrNotExist, "the task with the default 3 s grace was killed before it saved")
}

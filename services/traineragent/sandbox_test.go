//go:build integration

package traineragent_test

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	schedulerv1 "github.com/bmaas/bmaas/api/bmaas/scheduler/v1"
	"github.com/bmaas/bmaas/pkg/sandbox"
	"github.com/bmaas/bmaas/services/traineragent"
)

// requireSandbox skips where bwrap cannot make a sandbox, and returns how
// limits are enforced here.
func requireSandbox(t *testing.T) string {
	t.Helper()
	c := traineragent.DefaultConfig()
	r, err := sandbox.New(sandbox.Config{Mechanism: c.Sandbox, Bwrap: c.Bwrap, UID: c.SandboxUID, GID: c.SandboxGID, Cgroup: "bmaas"})
	require.NoError(t, err)
	if r.Err() != nil {
		t.Skipf("no task sandbox here (install Debian's bubblewrap): %v", r.Err())
	}
	return r.LimitMode()
}

// taskLog reads a task's log as the sink wrote it.
func taskLog(t *testing.T, workDir, job string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(workDir, job, "rank-0-attempt-0", "task.log"))
	require.NoError(t, err)
	return string(b)
}

// sandboxScript reports what a task sees of its user, the agent's files
// and its environment.
const sandboxScript = `echo "uid=$(id -u)"
cat "$AGENT_DATA/agent.db" || echo "no agent.db"
ls "$AGENT_DATA" || echo "no data dir listing"
cat "$TOKEN" || echo "no token"
cat "$CODE/train.txt"
echo "env=$(tr '\0' '\n' < /proc/$$/environ | cut -d= -f1 | sort | tr '\n' ' ')"
`

func TestProcessRunsSandboxed(t *testing.T) {
	t.Parallel()
	requireSandbox(t)
	e := newEnv(t)
	// The agent's data directory with a file of its own, and a token file
	// in a directory the task is given read-only (as /etc would be).
	data := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(data, "agent.db"), []byte("agent-secret"), 0o644))
	code := t.TempDir()
	require.NoError(t, os.Chmod(code, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(code, "train.txt"), []byte("code is readable\n"), 0o644))
	token := filepath.Join(code, "token")
	require.NoError(t, os.WriteFile(token, []byte("tok3n"), 0o644))
	e.agent("sb1", func(c *traineragent.Config) { c.WorkDir, c.DataDir, c.Secrets = "", data, []string{token} })

	e.assign(&schedulerv1.Assignment{JobId: "jobsb", Node: "sb1", Term: 1, Spec: &schedulerv1.JobSpec{
		Runtime: &schedulerv1.JobSpec_Process{Process: &schedulerv1.ProcessRuntime{Command: "sh", Args: []string{"-c", sandboxScript},
			Workdir: code, Env: map[string]string{"AGENT_DATA": data, "TOKEN": token, "CODE": code}}}}})
	e.waitTask("jobsb", 0, schedulerv1.TaskState_TASK_STATE_SUCCEEDED, 20*time.Second)
	log := taskLog(t, filepath.Join(data, "agent"), "jobsb")

	uid := os.Geteuid()
	if uid == 0 {
		uid = 65534 // --trainer-agent.sandbox-uid
	}
	require.Contains(t, log, "uid="+strconv.Itoa(uid)+"\n")
	require.NotContains(t, log, "agent-secret")
	require.Contains(t, log, "no agent.db\n")
	require.Contains(t, log, "no data dir listing\n")
	require.NotContains(t, log, "tok3n")
	require.Contains(t, log, "no token\n")
	require.Contains(t, log, "code is readable\n", "the workdir is bound")
	// Only the contract's variables, the spec's own, and PATH, HOME, LANG,
	// PYTHONUNBUFFERED (and the shell's PWD from bwrap's chdir).
	require.Contains(t, log, "env=AGENT_DATA BMAAS_ATTEMPT BMAAS_CHECKPOINT_DIR BMAAS_DATA_DIR BMAAS_HPARAMS BMAAS_JOB_ID "+
		"BMAAS_METRICS_FILE BMAAS_OUTPUT_DIR CODE CUDA_VISIBLE_DEVICES HOME LANG PATH PWD PYTHONUNBUFFERED TOKEN \n")
}

func TestProcessOverMemoryIsOOMKilled(t *testing.T) {
	t.Parallel()
	if mode := requireSandbox(t); mode != "v1" && mode != "v2" {
		t.Skipf("limits here are %s: no cgroup of ours to kill a task over its memory", mode)
	}
	if _, err := os.Stat("/usr/bin/python3"); err != nil {
		t.Skip("no /usr/bin/python3")
	}
	e := newEnv(t)
	e.agent("oom1", nil)
	e.assign(&schedulerv1.Assignment{JobId: "joboom", Node: "oom1", Term: 1, Spec: &schedulerv1.JobSpec{
		Resources: &schedulerv1.Resources{MemoryBytes: 64 << 20, CpuMillis: 1000},
		Runtime: &schedulerv1.JobSpec_Process{Process: &schedulerv1.ProcessRuntime{Command: "python3",
			Args: []string{"-c", "x = b'x' * (400 << 20); print('allocated')"}}}}})
	st := e.waitTask("joboom", 0, schedulerv1.TaskState_TASK_STATE_FAILED, 20*time.Second)
	t.Logf("reason: %s", strings.SplitN(st.Message, "\n", 2)[0])
	require.True(t, strings.HasPrefix(st.Message, "OOMKilled: used "), st.Message)
	require.Regexp(t, `^OOMKilled: used (6[0-4]|[3-5][0-9]) MiB of 64 MiB; python3 exited: exit status 137`, st.Message)
	require.Equal(t, int32(137), st.ExitCode)
	require.NotContains(t, st.Message, "allocated")
}

func TestProcessStopSignalsTheCommand(t *testing.T) {
	t.Parallel()
	requireSandbox(t)
	e := newEnv(t)
	dir := t.TempDir()
	e.agent("term1", func(c *traineragent.Config) { c.WorkDir = dir })
	e.assign(&schedulerv1.Assignment{JobId: "jobterm", Node: "term1", Term: 1, Spec: &schedulerv1.JobSpec{
		Runtime: &schedulerv1.JobSpec_Process{Process: &schedulerv1.ProcessRuntime{Command: "sh", Args: []string{"-c",
			`trap 'echo "got TERM"; exit 0' TERM; echo ready; while :; do sleep 0.05; done`}}}}})
	e.waitTask("jobterm", 0, schedulerv1.TaskState_TASK_STATE_RUNNING, 10*time.Second)
	require.Eventually(t, func() bool { return strings.Contains(taskLog(t, dir, "jobterm"), "ready") }, 10*time.Second, 10*time.Millisecond)
	e.unassign(&schedulerv1.Assignment{JobId: "jobterm", Node: "term1"})
	require.Eventually(t, func() bool { return strings.Contains(taskLog(t, dir, "jobterm"), "got TERM\n") },
		10*time.Second, 10*time.Millisecond, "SIGTERM reaches the command in the sandbox")
}

func TestProcessFailsWithoutBwrap(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.agent("nb1", func(c *traineragent.Config) { c.Bwrap = "/no/such/bwrap" }) // the agent starts
	e.assign(&schedulerv1.Assignment{JobId: "jobnb", Node: "nb1", Term: 1, Spec: &schedulerv1.JobSpec{
		Runtime: &schedulerv1.JobSpec_Process{Process: &schedulerv1.ProcessRuntime{Command: "sh", Args: []string{"-c", "echo hi"}}}}})
	st := e.waitTask("jobnb", 0, schedulerv1.TaskState_TASK_STATE_FAILED, 10*time.Second)
	require.Contains(t, st.Message, "--trainer-agent.bwrap")
	require.Contains(t, st.Message, "bubblewrap")
	require.Contains(t, st.Message, "--trainer-agent.sandbox=none")
}

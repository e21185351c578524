//go:build integration

package tests

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	gatewayv1 "github.com/bmaas/bmaas/api/bmaas/gateway/v1"
	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
	schedulerv1 "github.com/bmaas/bmaas/api/bmaas/scheduler/v1"
	"github.com/bmaas/bmaas/pkg/sandbox"
	"github.com/bmaas/bmaas/tests/harness"
)

// TestProcessJobsAreSandboxed runs process jobs through `bmaas up` with
// auth on: a job runs as another user than the platform (when it is
// root), cannot read the token file (here in the job's own read-only
// workdir) nor list the data directory, and a job over its memory
// request fails with the reason.
func TestProcessJobsAreSandboxed(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("bwrap"); err != nil {
		t.Skip("no bwrap (Debian's bubblewrap; .ci/run installs it)")
	}
	code := t.TempDir()
	require.NoError(t, os.Chmod(code, 0o755))
	token := filepath.Join(code, "token")
	require.NoError(t, os.WriteFile(token, []byte("s3cret-token"), 0o600))
	c := harness.Start(t, harness.WithTokenFile(token))
	ctx := t.Context()
	sc := schedulerv1.NewSchedulerServiceClient(c.Conn)
	_, err := c.Registry.CreateModel(ctx, &registryv1.CreateModelRequest{Model: &registryv1.Model{Name: "sandboxed"}})
	require.NoError(t, err)

	look := &schedulerv1.JobSpec{Model: "sandboxed", Runtime: &schedulerv1.JobSpec_Process{Process: &schedulerv1.ProcessRuntime{
		Command: "sh", Workdir: code, Args: []string{"-c", `echo "uid=$(id -u)"
cat token || echo "no token"
ls "$HOME/../../.." || echo "no data dir"
echo ok > "$BMAAS_OUTPUT_DIR/result.txt"`}}}}
	hog := &schedulerv1.JobSpec{Model: "sandboxed", Resources: &schedulerv1.Resources{MemoryBytes: 64 << 20},
		Runtime: &schedulerv1.JobSpec_Process{Process: &schedulerv1.ProcessRuntime{
			Command: "sh", Args: []string{"-c", `x=$(head -c 419430400 /dev/zero | tr '\0' x); echo "held ${#x}"`}}}}
	var ids []string
	for _, spec := range []*schedulerv1.JobSpec{look, hog} {
		sub, err := sc.SubmitJob(ctx, &schedulerv1.SubmitJobRequest{Spec: spec})
		require.NoError(t, err)
		ids = append(ids, sub.Job.Id)
	}

	job := waitJob(t, sc, ids[0], time.Minute)
	require.Equal(t, schedulerv1.JobState_JOB_STATE_SUCCEEDED, job.State, "reason: %s", job.Reason)
	logs := jobLogs(t, sc, ids[0])
	uid := os.Geteuid()
	if uid == 0 {
		uid = 65534
	}
	require.Contains(t, logs, "uid="+strconv.Itoa(uid)+"\n", logs)
	require.Contains(t, logs, "no token\n", logs)
	require.NotContains(t, logs, "s3cret-token")
	require.Contains(t, logs, "no data dir\n", logs)

	box, err := sandbox.New(sandbox.Config{Mechanism: sandbox.Bwrap, Bwrap: "bwrap", UID: 65534, GID: 65534, Cgroup: "bmaas"})
	require.NoError(t, err)
	if mode := box.LimitMode(); mode != "v1" && mode != "v2" {
		t.Skipf("limits here are %s: no cgroup of ours to kill a job over its memory", mode)
	}
	job = waitJob(t, sc, ids[1], time.Minute)
	require.Equal(t, schedulerv1.JobState_JOB_STATE_FAILED, job.State)
	t.Logf("reason: %s", strings.SplitN(job.Reason, "\n", 2)[0])
	require.True(t, strings.Contains(job.Reason, "OOMKilled: used ") && strings.Contains(job.Reason, " of 64 MiB"), "reason: %s", job.Reason)
	require.NotContains(t, job.Reason, "held ")
}

// TestReplicasAreSandboxed: a model-server replica runs as bmaas's replica
// process in a sandbox, as process jobs do: another user (when bmaas is
// root), its own PID and mount namespaces, only its own environment,
// neither the data directory nor the token file in sight, and its memory
// request as its cgroup's limit.
func TestReplicasAreSandboxed(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("bwrap"); err != nil {
		t.Skip("no bwrap (Debian's bubblewrap; .ci/run installs it)")
	}
	tokenDir := t.TempDir()
	token := filepath.Join(tokenDir, "token")
	require.NoError(t, os.WriteFile(token, []byte("s3cret-token"), 0o600))
	c := harness.Start(t, withFastGateway(), harness.WithTokenFile(token))
	servedIris(t, c)

	// The replica process: `bmaas replica --config <its directory>/...`.
	var pid int
	eventually(t, 10*time.Second, "the replica process", func() bool {
		pid = replicaPID(t, c.Config.DataDir)
		return pid != 0
	})
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	require.NoError(t, err)
	if os.Geteuid() == 0 {
		require.Regexp(t, `(?m)^Uid:\s+65534\s`, string(status))
	}
	env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	require.NoError(t, err)
	var names []string
	for _, kv := range strings.Split(strings.TrimRight(string(env), "\x00"), "\x00") {
		k, _, _ := strings.Cut(kv, "=")
		names = append(names, k)
	}
	require.ElementsMatch(t, []string{"PATH", "HOME", "LANG", "PWD"}, names, "the replica's environment")
	for _, ns := range []string{"mnt", "pid"} {
		mine, err := os.Readlink("/proc/self/ns/" + ns)
		require.NoError(t, err)
		its, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/%s", pid, ns))
		require.NoError(t, err)
		require.NotEqual(t, mine, its, "the replica shares the %s namespace", ns)
	}
	// What the replica sees, through its root: no secrets, no token.
	root := fmt.Sprintf("/proc/%d/root", pid)
	secrets, _ := os.ReadDir(root + filepath.Join(c.Config.DataDir, "secrets"))
	require.Empty(t, secrets, "the replica sees the data directory's secrets")
	b, _ := os.ReadFile(root + token)
	require.NotContains(t, string(b), "s3cret-token")

	// Its memory request is its cgroup's limit, where cgroups are ours.
	cg, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	require.NoError(t, err)
	for _, line := range strings.Split(string(cg), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) == 3 && parts[1] == "memory" && strings.Contains(parts[2], "/bmaas/") {
			limit, err := os.ReadFile(filepath.Join("/sys/fs/cgroup/memory", parts[2], "memory.limit_in_bytes"))
			require.NoError(t, err)
			d, err := gatewayv1.NewDeploymentServiceClient(c.Conn).GetDeployment(t.Context(), &gatewayv1.GetDeploymentRequest{Name: "iris"})
			require.NoError(t, err)
			want := d.Deployment.GetStatus().GetReplicaResources().GetMemoryBytes()
			require.Positive(t, want)
			require.Equal(t, strconv.FormatInt(want, 10), strings.TrimSpace(string(limit)), "the replica's memory request")
			return
		}
	}
	t.Log("no v1 memory cgroup of the replica's: its limit is not checked here")
}

// replicaPID finds the replica process serving out of dataDir.
func replicaPID(t *testing.T, dataDir string) int {
	t.Helper()
	ents, err := os.ReadDir("/proc")
	require.NoError(t, err)
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmd, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil {
			continue
		}
		args := strings.Split(string(cmd), "\x00")
		if len(args) >= 4 && args[1] == "replica" && args[2] == "--config" && strings.HasPrefix(args[3], dataDir) {
			return pid
		}
	}
	return 0
}

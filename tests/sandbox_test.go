package tests

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

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

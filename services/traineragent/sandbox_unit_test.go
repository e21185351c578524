package traineragent

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	schedulerv1 "github.com/bmaas/bmaas/api/bmaas/scheduler/v1"
	"github.com/bmaas/bmaas/pkg/sandbox"
)

func TestSandboxConfigValidate(t *testing.T) {
	t.Parallel()
	ok := DefaultConfig()
	ok.Node = "n1"
	require.Equal(t, "bwrap", ok.Sandbox, "sandboxed by default")
	require.Equal(t, 65534, ok.SandboxUID)
	for flag, mutate := range map[string]func(*Config){
		"trainer-agent.sandbox:":     func(c *Config) { c.Sandbox = "chroot" },
		"trainer-agent.bwrap:":       func(c *Config) { c.Bwrap = "" },
		"trainer-agent.sandbox-uid:": func(c *Config) { c.SandboxUID = 0 },
		"trainer-agent.sandbox-gid:": func(c *Config) { c.SandboxGID = -1 },
	} {
		c := ok
		mutate(&c)
		require.ErrorContains(t, c.Validate(), flag)
	}
	c := ok
	c.Sandbox, c.Bwrap = "none", ""
	require.NoError(t, c.Validate(), "no bwrap needed without a sandbox")
}

func TestProcessEnvIsOnlyTheContract(t *testing.T) {
	t.Parallel()
	cfg := DefaultConfig()
	w := &worker{s: &Service{cfg: cfg}, dir: "/d/agent/j/rank-1-attempt-2", a: &schedulerv1.Assignment{JobId: "j", Rank: 1, Attempt: 2,
		WorldSize: 2, GpuIndices: []int32{0, 3}, MasterAddr: "10.0.0.1", MasterPort: 29500, NodeRank: 1}}
	d := taskDirs{data: "/t/data", output: "/t/output", checkpoint: "/t/checkpoint", metrics: "/t/metrics.jsonl"}
	env := w.processEnv(&schedulerv1.ProcessRuntime{Env: map[string]string{"MY_VAR": "x"}, Hyperparameters: map[string]string{"lr": "0.1"}}, d)
	require.Equal(t, []string{"PATH=" + sandboxPath, "HOME=/d/agent/j/rank-1-attempt-2", "LANG=C.UTF-8", "PYTHONUNBUFFERED=1",
		"BMAAS_JOB_ID=j", "BMAAS_ATTEMPT=2", `BMAAS_HPARAMS={"lr":"0.1"}`, "BMAAS_DATA_DIR=/t/data", "BMAAS_OUTPUT_DIR=/t/output",
		"BMAAS_CHECKPOINT_DIR=/t/checkpoint", "BMAAS_METRICS_FILE=/t/metrics.jsonl", "CUDA_VISIBLE_DEVICES=0,3",
		"MASTER_ADDR=10.0.0.1", "MASTER_PORT=29500", "WORLD_SIZE=2", "RANK=1", "LOCAL_RANK=0", "NODE_RANK=1", "MY_VAR=x"}, env)
}

func TestCommandRootAndLookPath(t *testing.T) {
	t.Parallel()
	require.Empty(t, commandRoot("/usr/bin/python3"), "the system directories are always there")
	venv := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(venv, "bin"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(venv, "pyvenv.cfg"), nil, 0o644))
	require.Equal(t, venv, commandRoot(filepath.Join(venv, "bin", "python")), "a virtual environment is bound whole")
	require.Equal(t, "/home/u/tools", commandRoot("/home/u/tools/train"))

	p, err := lookPath("sh", sandboxPath)
	require.NoError(t, err)
	require.Equal(t, "/usr/local/sbin", filepath.SplitList(sandboxPath)[0])
	require.True(t, filepath.IsAbs(p))
	_, err = lookPath("no-such-trainer", sandboxPath)
	require.Error(t, err)
	require.Equal(t, "OOMKilled: used 64 MiB of 64 MiB", oomReason(sandbox.Result{OOMKilled: true, PeakBytes: 64 << 20, LimitBytes: 64 << 20}))
	require.Equal(t, "OOMKilled: used all of 64 MiB", oomReason(sandbox.Result{OOMKilled: true, LimitBytes: 64 << 20}))
	require.Equal(t, "OOMKilled: out of memory", oomReason(sandbox.Result{OOMKilled: true}))
	require.Equal(t, "64 MiB", mib(64<<20))
	require.Equal(t, "518 MiB", mib(518<<20+1000))
}

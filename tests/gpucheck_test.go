//go:build integration

package tests

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bmaas/bmaas/tests/harness"
)

// TestGPUCheckScriptRunsOnCPU runs make gpu-check's script with
// GPU_CHECK_CPU_ONLY=1 (one fake GPU, PyTorch on CPU): every command it
// sends a GPU machine works as written.
func TestGPUCheckScriptRunsOnCPU(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("the GPU check's script runs a whole platform")
	}
	if !hasTorch() {
		t.Skip("/usr/bin/python3 lacks torch and onnx (Debian's python3-torch and python3-onnx; .ci/run installs them)")
	}
	root := repoRoot(t)
	port := func() string {
		_, p, err := net.SplitHostPort(harness.FreeAddr(t))
		require.NoError(t, err)
		return p
	}
	out := t.TempDir()
	ctx, cancel := context.WithTimeout(t.Context(), 8*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", filepath.Join(root, "bench", "gpu", "check.sh"))
	cmd.Env = append(os.Environ(), "GPU_CHECK_CPU_ONLY=1", "PYTHON=/usr/bin/python3", "BMAAS_BIN="+harness.Binary(t),
		"GRPC_PORT="+port(), "HTTP_PORT="+port(), "OUT="+out, "LLM_STEPS=20")
	log, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", tail(string(log), 6000))
	report, err := os.ReadFile(filepath.Join(out, "gpu-check.txt"))
	require.NoError(t, err)
	for _, want := range []string{"GPU 0 Fake GPU", "trained 30 epochs of 455 rows on cpu", "concurrency 32:",
		"accuracy", "runs on job:", "language model:", "time to first token p50", "16 concurrent streams:", "== gpu-check passed"} {
		require.Contains(t, string(report), want)
	}
}

//go:build integration

package tests

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/bmaas/bmaas/tests/harness"
)

const python = "/usr/bin/python3"

// TestPythonSDKLive runs the Python SDK's live tests against `bmaas up`:
// upload iris, train, deploy, predict over REST v2.
func TestPythonSDKLive(t *testing.T) {
	t.Parallel()
	if _, err := os.Stat(python); err != nil {
		t.Skipf("%s not found", python)
	}
	p := harness.StartProcess(t, "up", "--data-dir", t.TempDir(), "--embedded.fast-election",
		"--gateway.reconcile-interval", "100ms")
	cmd := exec.CommandContext(t.Context(), python, "-m", "unittest", "discover", "-v", "-s", filepath.Join("sdk", "python", "tests_live"))
	cmd.Dir = ".."
	cmd.Env = append(os.Environ(), "BMAAS_URL=http://"+p.HTTP, "PYTHONDONTWRITEBYTECODE=1")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "python live tests:\n%s", out)
	require.NotContains(t, string(out), "skipped", "%s", out)
	t.Logf("%s", out)
}

// TestPythonSDKIdentity runs the SDK's identity tests (projects, tokens,
// whoami, the audit trail, the project header) against the bmaas binary
// under `bmaas up --auth`, which they start themselves.
func TestPythonSDKIdentity(t *testing.T) {
	t.Parallel()
	if _, err := os.Stat(python); err != nil {
		t.Skipf("%s not found", python)
	}
	cmd := exec.CommandContext(t.Context(), python, "-m", "unittest", "discover", "-v", "-s", filepath.Join("sdk", "python", "tests"),
		"-p", "test_iam_server.py")
	cmd.Dir = ".."
	cmd.Env = append(os.Environ(), "BMAAS_BIN="+harness.Binary(t), "PYTHONDONTWRITEBYTECODE=1")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "python identity tests:\n%s", out)
	require.NotContains(t, string(out), "skipped", "%s", out)
	t.Logf("%s", out)
}

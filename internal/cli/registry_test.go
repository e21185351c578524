//go:build integration

package cli

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/bmaas/bmaas/internal/app"
	"github.com/bmaas/bmaas/tests/harness"
)

// startRegistry runs the whole platform in-process (embedded etcd and NATS)
// and returns its gRPC address.
func startRegistry(t *testing.T) string {
	t.Helper()
	return harness.Start(t).Addrs.GRPC
}

// cli runs the CLI against the server at addr.
func cliAt(t *testing.T, addr string, args ...string) (string, error) {
	t.Helper()
	out, _, err := run(t, &globals{}, append([]string{"--server", addr}, args...)...)
	return out, err
}

func TestCLIAgainstRegistry(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	addr := harness.Start(t, func(c *app.Config) { c.Registry.ImportRoots = []string{dir} }).Addrs.GRPC
	model := "cli-e2e"

	data := make([]byte, 12<<20+7)
	_, _ = rand.Read(data)
	sum := sha256.Sum256(data)
	src := filepath.Join(dir, "model.onnx")
	require.NoError(t, os.WriteFile(src, data, 0o644))

	_, err := cliAt(t, addr, "model", "create", model, "--task-type", "binary", "--label", "team=ml")
	require.NoError(t, err)
	_, err = cliAt(t, addr, "model", "create", model)
	require.Equal(t, codes.AlreadyExists, status.Code(err), "%v", err)

	out, err := cliAt(t, addr, "model", "version", "upload", model, src, "--metric", "auc=0.9")
	require.NoError(t, err)
	require.Contains(t, out, hex.EncodeToString(sum[:]))
	out, err = cliAt(t, addr, "-o", "json", "model", "version", "upload", model, src)
	require.NoError(t, err)
	var v2 map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &v2))
	require.Equal(t, "2", v2["version"])

	// Files of the server's host outside the import roots stay out, and
	// the error names the flag the user typed.
	_, err = cliAt(t, addr, "model", "version", "import", model, "--server-path", "/etc/passwd")
	require.Equal(t, codes.InvalidArgument, status.Code(err), "%v", err)
	require.Contains(t, err.Error(), "--server-path: /etc/passwd is outside the import roots")
	require.NotContains(t, err.Error(), "source_path")
	out, err = cliAt(t, addr, "-o", "json", "model", "version", "import", model, "--server-path", src, "--format", "pytorch")
	require.NoError(t, err)
	require.Contains(t, out, `"format": "MODEL_FORMAT_PYTORCH"`)
	require.Contains(t, out, hex.EncodeToString(sum[:]))

	_, err = cliAt(t, addr, "model", "alias", "set", model, "production", "1")
	require.NoError(t, err)
	out, err = cliAt(t, addr, "model", "alias", "set", model, "production", "2")
	require.NoError(t, err)
	require.Contains(t, out, "moved from version 1 to 2")
	out, err = cliAt(t, addr, "-o", "json", "model", "version", "get", model+"@production")
	require.NoError(t, err)
	require.Contains(t, out, `"version": "2"`)

	dst := filepath.Join(dir, "copy.onnx")
	_, err = cliAt(t, addr, "model", "version", "download", model+"@production", "-o", dst)
	require.NoError(t, err)
	got, err := os.ReadFile(dst)
	require.NoError(t, err)
	require.Equal(t, sum, sha256.Sum256(got))

	out, err = cliAt(t, addr, "model", "version", "list", model)
	require.NoError(t, err)
	require.Contains(t, out, "production")
	_, err = cliAt(t, addr, "model", "alias", "unset", model, "production")
	require.NoError(t, err)
	_, err = cliAt(t, addr, "model", "version", "get", model+"@production")
	require.Equal(t, codes.NotFound, status.Code(err), "%v", err)

	_, err = cliAt(t, addr, "model", "version", "delete", model+"@1")
	require.NoError(t, err)
	_, err = cliAt(t, addr, "model", "delete", model, "--force")
	require.NoError(t, err)
	_, err = cliAt(t, addr, "model", "get", model)
	require.EqualError(t, err, `NotFound: model "cli-e2e" not found`)
}

func TestCLIDatasetAgainstRegistry(t *testing.T) {
	t.Parallel()
	addr := startRegistry(t)
	dir := t.TempDir()
	csv := "sepal_length,species\n5.1,setosa\n4.9,\n6.3,virginica\n"
	src := filepath.Join(dir, "iris.csv")
	require.NoError(t, os.WriteFile(src, []byte(csv), 0o644))

	out, err := cliAt(t, addr, "dataset", "upload", "cli-iris", src)
	require.NoError(t, err)
	require.Contains(t, out, "sepal_length")
	require.Contains(t, out, "numeric")

	out, err = cliAt(t, addr, "dataset", "list")
	require.NoError(t, err)
	require.Contains(t, out, "cli-iris")
	out, err = cliAt(t, addr, "dataset", "get", "cli-iris", "--version", "1")
	require.NoError(t, err)
	require.Contains(t, out, "species")

	dst := filepath.Join(dir, "copy.csv")
	_, err = cliAt(t, addr, "dataset", "download", "cli-iris@1", "-o", dst)
	require.NoError(t, err)
	got, err := os.ReadFile(dst)
	require.NoError(t, err)
	require.Equal(t, csv, string(got))

	_, err = cliAt(t, addr, "dataset", "delete", "cli-iris")
	require.NoError(t, err)
	_, err = cliAt(t, addr, "dataset", "get", "cli-iris")
	require.Equal(t, codes.NotFound, status.Code(err), "%v", err)
}

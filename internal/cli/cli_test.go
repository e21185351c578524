package cli

import (
	"bytes"
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
)

// run executes the CLI with args against g and returns stdout and stderr.
func run(t *testing.T, g *globals, args ...string) (string, string, error) {
	t.Helper()
	root := newRoot(&globals{dial: g.dial, getenv: g.getenv})
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs(args)
	err := root.ExecuteContext(t.Context())
	return out.String(), errOut.String(), err
}

func TestUploadDownloadRoundTrip(t *testing.T) {
	t.Parallel()
	f := newFakeRegistry()
	g := f.start(t)
	dir := t.TempDir()
	data := make([]byte, 5<<20+123) // several chunks plus a partial one
	_, _ = rand.Read(data)
	sum := sha256.Sum256(data)
	src := filepath.Join(dir, "model.onnx")
	require.NoError(t, os.WriteFile(src, data, 0o644))

	_, _, err := run(t, g, "model", "create", "iris", "--task-type", "multiclass", "--token", "s3cret")
	require.NoError(t, err)
	f.mu.Lock()
	require.Equal(t, "Bearer s3cret", f.lastAuth)
	f.mu.Unlock()

	out, stderr, err := run(t, g, "model", "version", "upload", "iris", src, "--metric", "accuracy=0.97", "--param", "depth=4")
	require.NoError(t, err)
	require.Empty(t, stderr, "no progress bar when stderr is not a terminal")
	require.Contains(t, out, "READY")
	require.Contains(t, out, "onnx")
	require.Contains(t, out, hex.EncodeToString(sum[:]))
	require.Contains(t, out, "accuracy=0.97")
	f.mu.Lock()
	require.Equal(t, chunkSize, f.maxChunk, "1 MiB chunks")
	f.mu.Unlock()

	out, _, err = run(t, g, "model", "alias", "set", "iris", "production", "1")
	require.NoError(t, err)
	require.Contains(t, out, "alias iris@production -> version 1")

	dst := filepath.Join(dir, "out", "..", "copy.onnx")
	out, _, err = run(t, g, "model", "version", "download", "iris@production", "-o", dst)
	require.NoError(t, err)
	require.Contains(t, out, "iris@1: 5 MiB written to")
	got, err := os.ReadFile(dst)
	require.NoError(t, err)
	require.Equal(t, sum, sha256.Sum256(got))
	require.NoFileExists(t, dst+".partial")
	_, _, err = run(t, g, "model", "version", "download", "iris@1", "-o", dir)
	require.ErrorContains(t, err, "is a directory")

	out, _, err = run(t, g, "-o", "json", "model", "version", "get", "iris")
	require.NoError(t, err)
	var v map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &v))
	require.Equal(t, "VERSION_STATUS_READY", v["status"])
	require.Equal(t, "model.onnx", v["filename"])
}

func TestDownloadRejectsCorruptBytes(t *testing.T) {
	t.Parallel()
	f := newFakeRegistry()
	g := f.start(t)
	dir := t.TempDir()
	src := filepath.Join(dir, "m.bin")
	require.NoError(t, os.WriteFile(src, bytes.Repeat([]byte("bmaas"), 1000), 0o644))
	_, _, err := run(t, g, "model", "create", "m")
	require.NoError(t, err)
	_, _, err = run(t, g, "model", "version", "upload", "m", src, "--format", "other")
	require.NoError(t, err)

	f.mu.Lock()
	f.corruptDL = true
	f.mu.Unlock()
	dst := filepath.Join(dir, "copy.bin")
	_, _, err = run(t, g, "model", "version", "download", "m@1", "-o", dst)
	require.ErrorContains(t, err, "sha256 mismatch")
	require.NoFileExists(t, dst)
	require.NoFileExists(t, dst+".partial")
}

func TestErrorsArePlain(t *testing.T) {
	t.Parallel()
	g := newFakeRegistry().start(t)
	_, _, err := run(t, g, "model", "get", "foo")
	require.EqualError(t, err, `NotFound: model "foo" not found`)
	require.Equal(t, codes.NotFound, status.Code(err))

	_, _, err = run(t, g, "model", "version", "upload", "foo", filepath.Join(t.TempDir(), "missing.onnx"))
	require.ErrorContains(t, err, "no such file")

	empty := filepath.Join(t.TempDir(), "empty.pt")
	require.NoError(t, os.WriteFile(empty, nil, 0o644))
	_, _, err = run(t, g, "model", "version", "upload", "foo", empty)
	require.ErrorContains(t, err, "is empty")

	full := filepath.Join(t.TempDir(), "m.pt")
	require.NoError(t, os.WriteFile(full, []byte("x"), 0o644))
	_, _, err = run(t, g, "model", "version", "upload", "foo", full)
	require.EqualError(t, err, `NotFound: model "foo" not found`, "the server's reason, not io.EOF")

	_, _, err = run(t, g, "model", "alias", "set", "foo", "42", "1")
	require.ErrorContains(t, err, "all digits")
	_, _, err = run(t, g, "model", "version", "get", "foo@")
	require.ErrorContains(t, err, "missing version or alias")
	_, _, err = run(t, g, "model", "version", "delete", "foo")
	require.ErrorContains(t, err, "foo@VERSION")
}

func TestListFollowsPages(t *testing.T) {
	t.Parallel()
	g := newFakeRegistry().start(t)
	for _, n := range []string{"a", "b", "c"} {
		_, _, err := run(t, g, "model", "create", n)
		require.NoError(t, err)
	}
	out, _, err := run(t, g, "-o", "yaml", "model", "list")
	require.NoError(t, err)
	require.Equal(t, "models:\n  - name: a\n    etag: \"1\"\n  - name: b\n    etag: \"1\"\n  - name: c\n    etag: \"1\"\n", out)
}

func TestDatasetUploadPrintsSchema(t *testing.T) {
	t.Parallel()
	g := newFakeRegistry().start(t)
	src := filepath.Join(t.TempDir(), "iris.csv")
	require.NoError(t, os.WriteFile(src, []byte("sepal_length,species\n5,setosa\n6,\n"), 0o644))
	out, _, err := run(t, g, "dataset", "upload", "iris", src)
	require.NoError(t, err)
	require.Contains(t, out, "Dataset: iris@1")
	require.Contains(t, out, "COLUMN         KIND             COUNT   MISSING   MEAN   STD      MIN   MAX")
	require.Contains(t, out, "sepal_length   numeric          2       0         5.5    0.7071   5     6")
	require.Contains(t, out, "species        categorical(1)   1       1         -      -        -     -")
}

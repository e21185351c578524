package traineragent

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

var modelLimits = extractLimits{bytes: 1 << 20, entries: 100}

func writeArtifact(t *testing.T, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "artifact")
	require.NoError(t, os.WriteFile(p, b, 0o444))
	return p
}

func tarOf(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for n, c := range files {
		require.NoError(t, tw.WriteHeader(&tar.Header{Name: n, Mode: 0o644, Size: int64(len(c)), Typeflag: tar.TypeReg}))
		_, err := tw.Write([]byte(c))
		require.NoError(t, err)
	}
	require.NoError(t, tw.Close())
	return b.Bytes()
}

func readModelFile(t *testing.T, dir, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name))
	require.NoError(t, err)
	return string(b)
}

// Every archive kind unpacks into the model directory.
func TestModelDirUnpacksArchives(t *testing.T) {
	t.Parallel()
	files := map[string]string{"config.json": "{}", "weights/w.bin": "abc"}
	plain := tarOf(t, files)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write(plain)
	require.NoError(t, zw.Close())
	var zb bytes.Buffer
	z := zip.NewWriter(&zb)
	for n, c := range files {
		f, err := z.Create(n)
		require.NoError(t, err)
		_, _ = f.Write([]byte(c))
	}
	require.NoError(t, z.Close())
	for name, b := range map[string][]byte{"tar": plain, "tar.gz": gz.Bytes(), "zip": zb.Bytes()} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := filepath.Join(t.TempDir(), "model")
			require.NoError(t, prepareModelDir(dir, writeArtifact(t, b), "m."+name, modelLimits))
			require.Equal(t, "{}", readModelFile(t, dir, "config.json"))
			require.Equal(t, "abc", readModelFile(t, dir, "weights/w.bin"))
		})
	}
}

// A single file is the directory's "model", and its original name too.
func TestModelDirHoldsASingleFileUnderBothNames(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "model")
	require.NoError(t, prepareModelDir(dir, writeArtifact(t, []byte("weights")), "net.pt", modelLimits))
	require.Equal(t, "weights", readModelFile(t, dir, "model"))
	require.Equal(t, "weights", readModelFile(t, dir, "net.pt"))

	bare := filepath.Join(t.TempDir(), "model")
	require.NoError(t, prepareModelDir(bare, writeArtifact(t, []byte("w")), "", modelLimits))
	entries, err := os.ReadDir(bare)
	require.NoError(t, err)
	require.Len(t, entries, 1)
}

// A zip entry that leaves the directory, or one over the limits, fails.
func TestModelDirRefusesBadZips(t *testing.T) {
	t.Parallel()
	mk := func(name, content string) []byte {
		var zb bytes.Buffer
		z := zip.NewWriter(&zb)
		f, err := z.Create(name)
		require.NoError(t, err)
		_, _ = f.Write([]byte(content))
		require.NoError(t, z.Close())
		return zb.Bytes()
	}
	err := prepareModelDir(filepath.Join(t.TempDir(), "m"), writeArtifact(t, mk("../x", "a")), "", modelLimits)
	require.ErrorContains(t, err, "leaves the directory")
	err = prepareModelDir(filepath.Join(t.TempDir(), "m"), writeArtifact(t, mk("big", "abcdef")), "", extractLimits{bytes: 3, entries: 10})
	require.ErrorContains(t, err, "more than 3 bytes")
}

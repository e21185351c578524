package traineragent

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
)

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	ok := DefaultConfig()
	ok.Node = "n1"
	require.NoError(t, ok.Validate())
	for name, mutate := range map[string]func(*Config){
		"node":   func(c *Config) { c.Node = "a/b" },
		"cpu":    func(c *Config) { c.CPUMillis = 0 },
		"gpus":   func(c *Config) { c.FakeGPUs = -1 },
		"labels": func(c *Config) { c.Labels = "zone" },
		"grace":  func(c *Config) { c.StopGrace = 2 * time.Hour },
		"drain":  func(c *Config) { c.ReplicaDrain = 0 },
	} {
		c := ok
		mutate(&c)
		require.ErrorContains(t, c.Validate(), "trainer-agent.", name)
	}
	long := ok
	long.StopGrace = 90 * time.Second // a checkpoint's time: no longer capped at 4 s
	require.NoError(t, long.Validate())
	labels, err := parseLabels(" zone=a, gpu = h200 ,")
	require.NoError(t, err)
	require.Equal(t, map[string]string{"zone": "a", "gpu": "h200"}, labels)
	c := Config{Node: "n", DataDir: "/d"}
	require.Equal(t, "/d/agent", c.workDir())
	require.Equal(t, "/d/agent/model-cache", c.modelCacheDir())
	require.EqualValues(t, 20<<30, ok.ModelCacheBytes)
	cache := ok
	cache.ModelCacheBytes = -1
	require.ErrorContains(t, cache.Validate(), "trainer-agent.model-cache-bytes: must not be negative")
	cache.ModelCacheBytes = 0 // unbounded
	require.NoError(t, cache.Validate())
}

func TestFormatOf(t *testing.T) {
	t.Parallel()
	for name, want := range map[string]registryv1.ModelFormat{
		"m.onnx": registryv1.ModelFormat_MODEL_FORMAT_ONNX, "m.PT": registryv1.ModelFormat_MODEL_FORMAT_PYTORCH,
		"m.pth": registryv1.ModelFormat_MODEL_FORMAT_PYTORCH, "m.bmaas": registryv1.ModelFormat_MODEL_FORMAT_NATIVE,
		"m.pkl": registryv1.ModelFormat_MODEL_FORMAT_OTHER,
	} {
		require.Equal(t, want, formatOf(name), name)
	}
}

func TestParseMetrics(t *testing.T) {
	t.Parallel()
	ml, err := parseMetrics([]byte(`{"step":3,"split":"validation","loss":0.5,"note":"x","acc":1}`))
	require.NoError(t, err)
	require.True(t, ml.hasStep)
	require.Equal(t, int64(3), ml.step)
	require.Equal(t, map[string]float64{"validation_loss": 0.5, "validation_acc": 1}, ml.values)
	ml, err = parseMetrics([]byte(`{"loss":2}`))
	require.NoError(t, err)
	require.False(t, ml.hasStep)
	require.Equal(t, map[string]float64{"loss": 2}, ml.values)
	_, err = parseMetrics([]byte(`not json`))
	require.Error(t, err)
}

func TestArchiveRoundTripAndTraversal(t *testing.T) {
	t.Parallel()
	src := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(src, "sub"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(src, "sub", "a.txt"), []byte("a"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(src, "b.bin"), []byte("b"), 0o644))
	fp, err := fingerprint(src)
	require.NoError(t, err)
	require.NotEqual(t, emptyFingerprint, fp)
	tgz := filepath.Join(t.TempDir(), "x.tar.gz")
	require.NoError(t, writeTarGz(tgz, src, func(rel string) bool { return rel != "b.bin" }))
	dst := t.TempDir()
	f, err := os.Open(tgz)
	require.NoError(t, err)
	defer func() { _ = f.Close() }()
	require.NoError(t, extractTarGz(f, dst, testLimits))
	files, err := listFiles(dst)
	require.NoError(t, err)
	require.Equal(t, []string{filepath.Join("sub", "a.txt")}, files)

	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	require.NoError(t, tw.WriteHeader(&tar.Header{Name: "../evil", Mode: 0o644, Typeflag: tar.TypeReg}))
	require.NoError(t, tw.Close())
	require.NoError(t, gz.Close())
	require.ErrorContains(t, extractTarGz(&buf, dst, testLimits), "leaves the directory")
}

func TestLineWriter(t *testing.T) {
	t.Parallel()
	var got []string
	lw := &lineWriter{emit: func(s string) { got = append(got, s) }}
	_, _ = lw.Write([]byte("a\nb"))
	_, _ = lw.Write([]byte("c\n\nd"))
	lw.close()
	require.Equal(t, []string{"a", "bc", "", "d"}, got)
}

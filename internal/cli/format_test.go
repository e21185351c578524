package cli

import (
	"os"
	"path/filepath"
	"testing"

	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
	"github.com/stretchr/testify/require"
)

func TestDetectFormat(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, tc := range []struct {
		file    string
		content string
		want    registryv1.ModelFormat
	}{
		{"model.bmaas", "anything", registryv1.ModelFormat_MODEL_FORMAT_NATIVE},
		{"model.ONNX", "anything", registryv1.ModelFormat_MODEL_FORMAT_ONNX},
		{"model.pt", "anything", registryv1.ModelFormat_MODEL_FORMAT_PYTORCH},
		{"model.pth", "anything", registryv1.ModelFormat_MODEL_FORMAT_PYTORCH},
		{"zipped.bin", "PK\x03\x04\x00\x00archive/data.pkl", registryv1.ModelFormat_MODEL_FORMAT_PYTORCH},
		{"pickled.bin", "\x80\x02}q\x00", registryv1.ModelFormat_MODEL_FORMAT_PYTORCH},
		{"graph.bin", "\x08\x07\x12\x07pytorch\x1a\x052.1.0", registryv1.ModelFormat_MODEL_FORMAT_ONNX},
		{"plain.zip", "PK\x03\x04\x00\x00readme.txt", registryv1.ModelFormat_MODEL_FORMAT_OTHER},
		{"notes.txt", "hello", registryv1.ModelFormat_MODEL_FORMAT_OTHER},
		{"empty", "", registryv1.ModelFormat_MODEL_FORMAT_OTHER},
	} {
		path := filepath.Join(dir, tc.file)
		require.NoError(t, os.WriteFile(path, []byte(tc.content), 0o644))
		got, err := DetectFormat(path)
		require.NoError(t, err, tc.file)
		require.Equal(t, tc.want, got, tc.file)
	}
	_, err := DetectFormat(filepath.Join(dir, "missing"))
	require.ErrorIs(t, err, os.ErrNotExist)
}

func TestParseFormat(t *testing.T) {
	t.Parallel()
	for name, want := range formatNames {
		got, err := parseFormat(name)
		require.NoError(t, err)
		require.Equal(t, want, got)
		require.Equal(t, name, formatName(got))
	}
	_, err := parseFormat("tflite")
	require.ErrorContains(t, err, "--format must be native, onnx, pytorch or other")
}

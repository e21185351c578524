package cli

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"

	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
)

var formatNames = map[string]registryv1.ModelFormat{
	"native":  registryv1.ModelFormat_MODEL_FORMAT_NATIVE,
	"onnx":    registryv1.ModelFormat_MODEL_FORMAT_ONNX,
	"pytorch": registryv1.ModelFormat_MODEL_FORMAT_PYTORCH,
	"other":   registryv1.ModelFormat_MODEL_FORMAT_OTHER,
}

func parseFormat(s string) (registryv1.ModelFormat, error) {
	if f, ok := formatNames[strings.ToLower(s)]; ok {
		return f, nil
	}
	return 0, usageErrorf("--format must be native, onnx, pytorch or other, not %q", s)
}

func formatName(f registryv1.ModelFormat) string {
	for name, v := range formatNames {
		if v == f {
			return name
		}
	}
	return "-"
}

// formatExt is the file extension a format is saved with.
func formatExt(f registryv1.ModelFormat) string {
	switch f {
	case registryv1.ModelFormat_MODEL_FORMAT_NATIVE:
		return ".bmaas"
	case registryv1.ModelFormat_MODEL_FORMAT_ONNX:
		return ".onnx"
	case registryv1.ModelFormat_MODEL_FORMAT_PYTORCH:
		return ".pt"
	}
	return ".bin"
}

// DetectFormat guesses a model file's format from its extension (.bmaas,
// .onnx, .pt, .pth) and otherwise from its first bytes.
func DetectFormat(path string) (registryv1.ModelFormat, error) {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".bmaas":
		return registryv1.ModelFormat_MODEL_FORMAT_NATIVE, nil
	case ".onnx":
		return registryv1.ModelFormat_MODEL_FORMAT_ONNX, nil
	case ".pt", ".pth":
		return registryv1.ModelFormat_MODEL_FORMAT_PYTORCH, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	head := make([]byte, 4096)
	n, err := io.ReadFull(f, head)
	if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
		return 0, err
	}
	return sniffFormat(head[:n]), nil
}

// sniffFormat recognises formats by content:
//   - PyTorch: torch.save writes a zip archive holding data.pkl (since
//     1.6), or a raw pickle (protocol 2 and up) before that.
//   - ONNX: a ModelProto starts with ir_version (field 1, varint, tag 0x08)
//     and names its producer or opset domain, which contain "onnx" or a
//     known exporter.
//
// Anything else is "other".
func sniffFormat(head []byte) registryv1.ModelFormat {
	switch {
	case bytes.HasPrefix(head, []byte("PK\x03\x04")):
		if bytes.Contains(head, []byte("data.pkl")) || bytes.Contains(head, []byte("/version")) {
			return registryv1.ModelFormat_MODEL_FORMAT_PYTORCH
		}
	case len(head) >= 2 && head[0] == 0x80 && head[1] >= 2 && head[1] <= 5:
		return registryv1.ModelFormat_MODEL_FORMAT_PYTORCH
	case len(head) >= 2 && head[0] == 0x08 && head[1] > 0 && head[1] < 0x20:
		for _, s := range []string{"onnx", "pytorch", "skl2onnx", "tf2onnx", "keras2onnx"} {
			if bytes.Contains(head, []byte(s)) {
				return registryv1.ModelFormat_MODEL_FORMAT_ONNX
			}
		}
	}
	return registryv1.ModelFormat_MODEL_FORMAT_OTHER
}

package traineragent

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	commonv1 "github.com/bmaas/bmaas/api/bmaas/common/v1"
)

func TestReadSignature(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	sig, err := readSignature(dir)
	require.NoError(t, err)
	require.Nil(t, sig, "no file: no signature")

	require.NoError(t, os.WriteFile(filepath.Join(dir, signatureFile), []byte(`{
	  "inputs": [{"name": "input", "columns": ["a", "b"]}],
	  "outputs": [{"name": "output", "labels": ["no", "yes"], "kind": "OUTPUT_KIND_LOGITS"}]}`), 0o644))
	sig, err = readSignature(dir)
	require.NoError(t, err)
	require.Equal(t, []string{"a", "b"}, sig.Inputs[0].Columns)
	require.Equal(t, []string{"no", "yes"}, sig.Outputs[0].Labels)
	require.Equal(t, commonv1.OutputKind_OUTPUT_KIND_LOGITS, sig.Outputs[0].Kind)

	require.NoError(t, os.WriteFile(filepath.Join(dir, signatureFile), []byte(`{"outputs": [{"kind": "SOFT"}]}`), 0o644))
	_, err = readSignature(dir)
	require.ErrorContains(t, err, "BMAAS_OUTPUT_DIR/signature.json is not a signature")

	require.Equal(t, []string{"model.onnx", "model.pt"}, withoutSignature([]string{"model.onnx", "model.pt", "signature.json"}))
}

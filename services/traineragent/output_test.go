//go:build integration

package traineragent_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"io"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
	schedulerv1 "github.com/bmaas/bmaas/api/bmaas/scheduler/v1"
)

// TestPyTorchOutputsAreAnArchive: outputs with a .pt file and no .onnx
// register as a PyTorch version whose artifact is the directory as a
// tar.gz (what a serving runtime gets unpacked), signature.json read into
// the version and left out of the archive.
func TestPyTorchOutputsAreAnArchive(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.model("pt")
	e.agent("p1", nil)
	script := `set -eu
printf 'weights' > "$BMAAS_OUTPUT_DIR/model.pt"
printf '{"hidden":[4]}' > "$BMAAS_OUTPUT_DIR/model.json"
printf '{"inputs":[{"name":"input","columns":["a","b"]}]}' > "$BMAAS_OUTPUT_DIR/signature.json"
`
	spec := &schedulerv1.JobSpec{Model: "pt", Runtime: &schedulerv1.JobSpec_Process{Process: &schedulerv1.ProcessRuntime{
		Command: "sh", Args: []string{"-c", script}}}}
	e.assign(&schedulerv1.Assignment{JobId: "jobpt", Node: "p1", Term: 1, Spec: spec})
	st := e.waitTask("jobpt", 0, schedulerv1.TaskState_TASK_STATE_SUCCEEDED, 20*time.Second)
	v := e.version("pt", st.ModelVersion)
	require.Equal(t, registryv1.ModelFormat_MODEL_FORMAT_PYTORCH, v.Format)
	require.Equal(t, "model.tar.gz", v.Filename)
	require.Equal(t, []string{"a", "b"}, v.GetSignature().GetInputs()[0].GetColumns())

	zr, err := gzip.NewReader(bytes.NewReader(e.download("pt", st.ModelVersion)))
	require.NoError(t, err)
	tr := tar.NewReader(zr)
	files := map[string]string{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		b, err := io.ReadAll(tr)
		require.NoError(t, err)
		files[h.Name] = string(b)
	}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	require.Equal(t, []string{"model.json", "model.pt"}, names)
	require.Equal(t, "weights", files["model.pt"])
}

package mlcli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func run(t *testing.T, args ...string) (string, string, error) {
	cmd := Command()
	var out, errb bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errb)
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(t.Context())
	return out.String(), errb.String(), err
}

const iris = "../../../examples/datasets/iris.csv"

func TestTrainEvaluatePredict(t *testing.T) {
	dir := t.TempDir()
	model := filepath.Join(dir, "iris.bmaas")
	out, progress, err := run(t, "train", "--data", iris, "--target", "target", "--algorithm", "mlp",
		"--param", "hidden=16", "--param", "lr=0.01", "--param", "epochs=20", "--out", model)
	require.NoError(t, err)
	require.Contains(t, out, "model written to")
	require.Contains(t, out, "accuracy")
	require.Contains(t, progress, "20/20")

	out, _, err = run(t, "evaluate", "--model", model, "--data", iris)
	require.NoError(t, err)
	require.Contains(t, out, "150 rows")
	require.Contains(t, out, "f1_macro")

	rows := filepath.Join(dir, "rows.csv")
	require.NoError(t, os.WriteFile(rows, []byte("petal_width_cm,petal_length_cm,sepal_width_cm,sepal_length_cm\n0.2,1.4,3.5,5.1\n2.3,5.9,3.0,6.7\n"), 0o644))
	out, _, err = run(t, "predict", "--model", model, "--data", rows)
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Equal(t, "prediction,p_0,p_1,p_2", lines[0])
	require.True(t, strings.HasPrefix(lines[1], "0,"), lines[1])
	require.True(t, strings.HasPrefix(lines[2], "2,"), lines[2])

	// Errors name the row and column.
	require.NoError(t, os.WriteFile(rows, []byte("petal_width_cm,petal_length_cm,sepal_width_cm,sepal_length_cm\n0.2,1.4,3.5,5.1\n2.3,wide,3.0,6.7\n"), 0o644))
	_, _, err = run(t, "predict", "--model", model, "--data", rows)
	require.ErrorContains(t, err, `row 2 (line 3), column "petal_length_cm": not a number`)
	require.NoError(t, os.WriteFile(rows, []byte("petal_width_cm,petal_length_cm\n0.2,1.4\n"), 0o644))
	_, _, err = run(t, "predict", "--model", model, "--data", rows)
	require.ErrorContains(t, err, `column "sepal_length_cm" of the model's signature is missing`)

	_, _, err = run(t, "train", "--data", iris, "--algorithm", "mlp", "--param", "lr=-1", "--out", model)
	require.ErrorContains(t, err, `param "lr"`)
}

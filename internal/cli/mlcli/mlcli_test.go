package mlcli

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/stretchr/testify/require"
)

// run executes `ml ARGS` under a root with the global -o flag, as
// bmaas has it; stdout and stderr are buffers, not terminals.
func run(t *testing.T, args ...string) (string, string, error) {
	root := &cobra.Command{Use: "bmaas", SilenceUsage: true, SilenceErrors: true}
	root.PersistentFlags().StringP("output", "o", "table", "output format")
	root.AddCommand(Command())
	var out, errb bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errb)
	root.SetArgs(append([]string{"ml"}, args...))
	err := root.ExecuteContext(t.Context())
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
	require.Empty(t, progress, "no progress bar when stderr is not a terminal")

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

// TestOutputFormats: the global -o json|yaml gives each ml command's
// result as data.
func TestOutputFormats(t *testing.T) {
	dir := t.TempDir()
	model := filepath.Join(dir, "iris.bmaas")
	out, _, err := run(t, "-o", "json", "train", "--data", iris, "--target", "target", "--algorithm", "logistic", "--out", model)
	require.NoError(t, err)
	var tr struct {
		Model   string                        `json:"model"`
		Task    string                        `json:"task"`
		Metrics map[string]map[string]float64 `json:"metrics"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &tr), out)
	require.Equal(t, model, tr.Model)
	require.Equal(t, "classification", tr.Task)
	require.Contains(t, tr.Metrics["test"], "accuracy")

	out, _, err = run(t, "-o", "json", "evaluate", "--model", model, "--data", iris)
	require.NoError(t, err)
	var ev struct {
		Rows    int                `json:"rows"`
		Metrics map[string]float64 `json:"metrics"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &ev), out)
	require.Equal(t, 150, ev.Rows)
	require.Contains(t, ev.Metrics, "f1_macro")

	out, _, err = run(t, "-o", "yaml", "evaluate", "--model", model, "--data", iris)
	require.NoError(t, err)
	require.Contains(t, out, "rows: 150\n")

	out, _, err = run(t, "-o", "json", "predict", "--model", model, "--data", iris)
	require.NoError(t, err)
	var pr struct {
		Predictions   []string    `json:"predictions"`
		Labels        []string    `json:"labels"`
		Probabilities [][]float64 `json:"probabilities"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &pr), out)
	require.Len(t, pr.Predictions, 150)
	require.Equal(t, []string{"0", "1", "2"}, pr.Labels)
	require.Len(t, pr.Probabilities[0], 3)
}

package artifact_test

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bmaas/bmaas/pkg/ml/artifact"
	"github.com/bmaas/bmaas/pkg/ml/dataset"
	"github.com/bmaas/bmaas/pkg/ml/train"
	"github.com/stretchr/testify/require"
)

func trained(t testing.TB, algo, data string, params map[string]string) (*artifact.Model, *dataset.Frame) {
	f, err := dataset.ReadFile("../../../examples/datasets/"+data, dataset.ReadOptions{})
	require.NoError(t, err)
	m, err := train.Run(t.Context(), train.Spec{Algorithm: algo, Target: "target", Params: params, Seed: 1}, f, train.Callbacks{})
	require.NoError(t, err)
	return m, f
}

func TestSaveLoadPredictsIdentically(t *testing.T) {
	for _, tc := range []struct{ algo, data string }{
		{"logistic", "iris.csv"}, {"linear", "diabetes.csv"}, {"mlp", "wine.csv"}, {"gbdt", "breast_cancer.csv"},
	} {
		m, f := trained(t, tc.algo, tc.data, map[string]string{"pca_components": map[bool]string{true: "3", false: "0"}[tc.algo == "linear"]})
		path := filepath.Join(t.TempDir(), "m.bmaas")
		require.NoError(t, m.Save(path))
		loaded, err := artifact.Load(path)
		require.NoError(t, err)
		require.Equal(t, m.Proto.Signature.String(), loaded.Proto.Signature.String())
		want := make([]float64, f.NumRows()*m.NumOutputs())
		got := make([]float64, len(want))
		require.NoError(t, m.NewPredictor().PredictFrame(f, want))
		p := loaded.NewPredictor()
		require.NoError(t, p.PredictFrame(f, got))
		require.Equal(t, want, got, tc.algo)

		// Steady-state prediction allocates nothing.
		rows := f.Take([]int{0, 1, 2, 3})
		out := make([]float64, 4*m.NumOutputs())
		allocs := testing.AllocsPerRun(50, func() {
			if err := p.PredictFrame(rows, out); err != nil {
				t.Fatal(err)
			}
		})
		require.Zero(t, allocs, tc.algo)
		x := make([]float64, len(m.Inputs()))
		allocs = testing.AllocsPerRun(50, func() {
			if err := p.PredictMatrix(x, 1, out); err != nil {
				t.Fatal(err)
			}
		})
		require.Zero(t, allocs, tc.algo)
	}
}

func TestPredictErrorsNameTheProblem(t *testing.T) {
	t.Parallel()
	m, _ := trained(t, "logistic", "iris.csv", nil)
	p := m.NewPredictor()
	out := make([]float64, 30)
	err := p.PredictMatrix(make([]float64, 6), 2, out)
	require.ErrorIs(t, err, artifact.ErrSignature)
	require.Contains(t, err.Error(), "3 features per row, the model takes 4")

	f, err := dataset.Read(strings.NewReader("sepal_length_cm,sepal_width_cm,petal_length_cm\n1,2,3\n"), dataset.ReadOptions{})
	require.NoError(t, err)
	err = p.PredictFrame(f, out)
	require.ErrorIs(t, err, artifact.ErrSignature)
	require.Contains(t, err.Error(), `"petal_width_cm"`)

	f, err = dataset.Read(strings.NewReader("sepal_length_cm,sepal_width_cm,petal_length_cm,petal_width_cm\n1,2,3,4\n1,2,,4\n"), dataset.ReadOptions{})
	require.NoError(t, err)
	err = p.PredictFrame(f, out)
	require.Error(t, err)
	require.Contains(t, err.Error(), `row 2, column "petal_length_cm"`)
	err = p.PredictMatrix([]float64{1, 2, 3, math.Inf(1)}, 1, out)
	require.Contains(t, err.Error(), `row 1, column "petal_width_cm"`)
}

func TestLoadRejectsCorruptFiles(t *testing.T) {
	t.Parallel()
	m, _ := trained(t, "gbdt", "iris.csv", map[string]string{"rounds": "3"})
	b, err := m.Marshal()
	require.NoError(t, err)
	_, err = artifact.Unmarshal(b[:len(b)/2])
	require.ErrorIs(t, err, artifact.ErrInvalid)
	_, err = artifact.Unmarshal([]byte("not a model"))
	require.ErrorIs(t, err, artifact.ErrInvalid)
	m.Proto.FormatVersion = 99
	b, _ = m.Marshal()
	_, err = artifact.Unmarshal(b)
	require.ErrorIs(t, err, artifact.ErrVersion)
	m.Proto.FormatVersion = artifact.FormatVersion
	m.Proto.GetGbdt().Trees[0].Left[0] = 0 // a cycle
	b, _ = m.Marshal()
	_, err = artifact.Unmarshal(b)
	require.ErrorIs(t, err, artifact.ErrInvalid)
}

// TestWriteFuzzSeeds keeps the fuzz seed corpus in step with the format:
// run with BMAAS_WRITE_FUZZ_SEEDS=1 to regenerate testdata/fuzz.
func TestWriteFuzzSeeds(t *testing.T) {
	if os.Getenv("BMAAS_WRITE_FUZZ_SEEDS") == "" {
		t.Skip("set BMAAS_WRITE_FUZZ_SEEDS=1 to regenerate")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzUnmarshal")
	require.NoError(t, os.MkdirAll(dir, 0o755))
	for _, tc := range []struct{ algo, data string }{{"logistic", "iris.csv"}, {"linear", "diabetes.csv"}, {"mlp", "iris.csv"}, {"gbdt", "iris.csv"}} {
		params := map[string]map[string]string{"mlp": {"epochs": "2", "hidden": "3"}, "gbdt": {"rounds": "2", "max_depth": "2"}}[tc.algo]
		m, _ := trained(t, tc.algo, tc.data, params)
		b, err := m.Marshal()
		require.NoError(t, err)
		body := "go test fuzz v1\n[]byte(" + quote(b) + ")\n"
		require.NoError(t, os.WriteFile(filepath.Join(dir, tc.algo), []byte(body), 0o644))
	}
}

func quote(b []byte) string {
	var sb strings.Builder
	sb.WriteByte('"')
	for _, c := range b {
		switch {
		case c == '"' || c == '\\':
			sb.WriteByte('\\')
			sb.WriteByte(c)
		case c >= 0x20 && c < 0x7f:
			sb.WriteByte(c)
		default:
			sb.WriteString("\\x")
			sb.WriteByte("0123456789abcdef"[c>>4])
			sb.WriteByte("0123456789abcdef"[c&15])
		}
	}
	sb.WriteByte('"')
	return sb.String()
}

package preprocess

import (
	"encoding/json"
	"math"
	"os"
	"strings"
	"testing"

	"github.com/bmaas/bmaas/pkg/ml/dataset"
	"github.com/stretchr/testify/require"
)

func TestGoldenPCA(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("../testdata/sklearn.json")
	require.NoError(t, err)
	var g struct {
		Cases map[string]struct {
			Ratio []float64 `json:"explained_variance_ratio"`
		} `json:"cases"`
	}
	require.NoError(t, json.Unmarshal(raw, &g))
	want := g.Cases["breast_cancer_pca5"].Ratio
	f, err := dataset.ReadFile("../../../examples/datasets/breast_cancer.csv", dataset.ReadOptions{})
	require.NoError(t, err)
	rows := make([]int, 400)
	for i := range rows {
		rows[i] = i
	}
	names := f.Names()
	p, x, err := Fit(f.Take(rows), Spec{Features: names[:30], Scale: "standard", PCAComponents: 5})
	require.NoError(t, err)
	require.Equal(t, []string{"pc1", "pc2", "pc3", "pc4", "pc5"}, p.Features)
	require.Len(t, x, 400*5)
	pca := p.Steps[len(p.Steps)-1].(*PCA)
	require.InDeltaSlice(t, want, pca.ExplainedVarianceRatio, 1e-4)

	// A variance fraction picks the fewest components exceeding it.
	p, _, err = Fit(f.Take(rows), Spec{Features: names[:30], Scale: "standard", PCAVariance: 0.7})
	require.NoError(t, err)
	require.Equal(t, 3, p.NumFeatures()) // .446+.191 = .637, +.100 = .738
}

func frame(t *testing.T, csv string) *dataset.Frame {
	f, err := dataset.Read(strings.NewReader(csv), dataset.ReadOptions{})
	require.NoError(t, err)
	return f
}

func TestImputeScaleOneHot(t *testing.T) {
	t.Parallel()
	f := frame(t, "a,b,c\n1,x,10\n,y,20\n3,x,\n4,,40\n")
	cases := []struct {
		impute string
		fillA  float64
	}{{"mean", 8.0 / 3}, {"median", 3}, {"most_frequent", 1}, {"constant", -1}}
	for _, tc := range cases {
		p, x, err := Fit(f, Spec{Features: []string{"a", "b", "c"}, Impute: tc.impute, ImputeValue: -1})
		require.NoError(t, err, tc.impute)
		imp := p.Steps[0].(*Impute)
		require.InDelta(t, tc.fillA, imp.Fill[0], 1e-12, tc.impute)
		if tc.impute == "constant" {
			require.Equal(t, []string{"a", "b=x", "b=y", "b=missing", "c"}, p.Features)
			require.Equal(t, []float64{4, 0, 0, 1, 40}, x[15:20])
		} else {
			require.Equal(t, []string{"a", "b=x", "b=y", "c"}, p.Features)
			require.Equal(t, []float64{4, 1, 0, 40}, x[12:16]) // b imputed with x
		}
	}
	p, x, err := Fit(f, Spec{Features: []string{"c", "a"}, Impute: "mean", Scale: "minmax"})
	require.NoError(t, err)
	require.Equal(t, []float64{0, 0}, x[:2])
	require.Equal(t, []float64{1, 1}, x[6:8])
	_ = p

	p, x, err = Fit(f, Spec{Features: []string{"a"}, Impute: "mean", Scale: "standard"})
	require.NoError(t, err)
	var m, v float64
	for _, e := range x {
		m += e
	}
	for _, e := range x {
		v += (e - m/4) * (e - m/4)
	}
	require.InDelta(t, 0, m, 1e-12)
	require.InDelta(t, 1, v/4, 1e-12)
}

func TestMissingWithoutImputationNamesRowAndColumn(t *testing.T) {
	t.Parallel()
	f := frame(t, "a,b\n1,2\n3,\n")
	_, _, err := Fit(f, Spec{Features: []string{"a", "b"}})
	require.ErrorIs(t, err, ErrMissingValue)
	require.Contains(t, err.Error(), `row 2, column "b"`)
	// CSV refuses infinities (dataset.ErrNotFinite); a frame built in code
	// may hold one.
	f, err = dataset.NewFrame(&dataset.Column{Name: "a", Kind: dataset.Numeric, Num: []float64{1, 3}},
		&dataset.Column{Name: "b", Kind: dataset.Numeric, Num: []float64{2, math.Inf(1)}})
	require.NoError(t, err)
	_, _, err = Fit(f, Spec{Features: []string{"a", "b"}, Impute: "mean"})
	require.ErrorIs(t, err, ErrMissingValue)
	require.Contains(t, err.Error(), `row 2, column "b"`)
}

func TestEncodeFrameAtPrediction(t *testing.T) { // not parallel: AllocsPerRun
	train := frame(t, "n,color\n1,red\n2,blue\n")
	p, _, err := Fit(train, Spec{Features: []string{"n", "color"}})
	require.NoError(t, err)
	var ws Workspace
	// Unseen category: all-zero indicators; column order differs; extra column ignored.
	pred := frame(t, "extra,color,n\n1,green,5\n2,red,6\n")
	raw := make([]float64, 4)
	require.NoError(t, p.EncodeFrame(pred, raw, &ws))
	x, err := p.Apply(raw, 2, &ws, 1)
	require.NoError(t, err)
	require.Equal(t, []float64{5, 0, 0, 6, 1, 0}, x)
	// Missing column.
	err = p.EncodeFrame(frame(t, "n\n1\n"), raw, &ws)
	require.ErrorIs(t, err, ErrSchema)
	require.Contains(t, err.Error(), `"color"`)
	// Text in a numeric input.
	err = p.EncodeFrame(frame(t, "n,color\n1,red\nabc,red\n"), raw, &ws)
	require.ErrorIs(t, err, dataset.ErrNotNumeric)
	require.Contains(t, err.Error(), `row 2, column "n"`)
	// Numbers in a categorical input are looked up by their text.
	p2, _, err := Fit(frame(t, "k\n1\n2\nz\n"), Spec{Features: []string{"k"}})
	require.NoError(t, err)
	raw = make([]float64, 2)
	require.NoError(t, p2.EncodeFrame(frame(t, "k\n2\n7\n"), raw, &ws))
	require.Equal(t, float64(1), raw[0])
	require.Equal(t, float64(-1), raw[1])

	buf := make([]float64, 4)
	allocs := testing.AllocsPerRun(100, func() {
		if err := p.EncodeFrame(pred, buf, &ws); err != nil {
			t.Fatal(err)
		}
		if _, err := p.Apply(buf, 2, &ws, 1); err != nil {
			t.Fatal(err)
		}
	})
	require.Zero(t, allocs)
	require.False(t, math.IsNaN(buf[0]))
}

func TestSpecValidate(t *testing.T) {
	t.Parallel()
	for _, s := range []Spec{{Impute: "magic"}, {Scale: "log"}, {PCAComponents: -1}, {PCAVariance: 1.5}, {PCAComponents: 2, PCAVariance: 0.5}} {
		require.ErrorIs(t, s.Validate(), ErrSpec)
	}
}

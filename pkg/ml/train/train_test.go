package train

import (
	"context"
	"maps"
	"strings"
	"testing"

	"github.com/bmaas/bmaas/pkg/ml/artifact"
	"github.com/bmaas/bmaas/pkg/ml/dataset"
	"github.com/stretchr/testify/require"
)

func frame(t testing.TB, name string) *dataset.Frame {
	f, err := dataset.ReadFile("../../../examples/datasets/"+name, dataset.ReadOptions{})
	require.NoError(t, err)
	return f
}

func testMetric(t *testing.T, m *artifact.Model, name string) float64 {
	v, ok := Metric(m, "test", name)
	require.True(t, ok, name)
	return v
}

// Quality floors on stratified 80/20 splits with fixed seeds. A test set
// of 30 (iris) or 114 (breast_cancer) rows makes one split's accuracy
// coarse (one row of breast_cancer is 0.9 points), so the floor applies to
// the mean over four fixed split seeds; each seed's figure is logged.
func TestQualityFloors(t *testing.T) {
	t.Parallel()
	cases := []struct {
		data, algo string
		params     map[string]string
		floor      float64
	}{
		{"iris.csv", "logistic", nil, 0.93},
		{"breast_cancer.csv", "gbdt", nil, 0.95},
		{"digits.csv", "mlp", map[string]string{"epochs": "40", "patience": "0"}, 0.95},
	}
	for _, tc := range cases {
		t.Run(tc.algo, func(t *testing.T) {
			t.Parallel()
			f := frame(t, tc.data)
			var sum float64
			for seed := uint64(1); seed <= 4; seed++ {
				m, err := Run(t.Context(), Spec{Algorithm: tc.algo, Target: "target", Params: tc.params, Validation: -1, Seed: seed}, f, Callbacks{})
				require.NoError(t, err)
				acc := testMetric(t, m, "accuracy")
				t.Logf("%s %s seed %d: test accuracy %.4f", tc.algo, tc.data, seed, acc)
				sum += acc
			}
			require.GreaterOrEqual(t, sum/4, tc.floor)
		})
	}
}

func TestResumeEqualsUninterrupted(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		algo   string
		params map[string]string
	}{
		{"mlp", map[string]string{"epochs": "12", "hidden": "16", "patience": "3", "schedule": "cosine"}},
		{"gbdt", map[string]string{"rounds": "25", "subsample": "0.7", "colsample": "0.6", "patience": "4"}},
	} {
		t.Run(tc.algo, func(t *testing.T) {
			t.Parallel()
			f := frame(t, "breast_cancer.csv")
			spec := Spec{Algorithm: tc.algo, Target: "target", Params: tc.params, Seed: 5}
			var ckpts [][]byte
			full, err := Run(t.Context(), spec, f, Callbacks{CheckpointEvery: 3, OnCheckpoint: func(_ context.Context, b []byte) error {
				ckpts = append(ckpts, b)
				return nil
			}})
			require.NoError(t, err)
			require.NotEmpty(t, ckpts)
			want, err := full.Marshal()
			require.NoError(t, err)
			// Resume from the first checkpoint and from one taken on cancellation.
			resumed, err := Resume(t.Context(), spec, f, ckpts[0], Callbacks{})
			require.NoError(t, err)
			got, err := resumed.Marshal()
			require.NoError(t, err)
			require.Equal(t, want, got)

			ctx, cancel := context.WithCancel(t.Context())
			steps := 0
			var last []byte
			_, err = Run(ctx, spec, f, Callbacks{
				OnEvent: func(e Event) {
					if e.Split == "train" && !e.Final {
						if steps++; steps == 2 {
							cancel()
						}
					}
				},
				OnCheckpoint: func(_ context.Context, b []byte) error { last = b; return nil },
			})
			require.ErrorIs(t, err, context.Canceled)
			require.NotNil(t, last)
			resumed, err = Resume(t.Context(), spec, f, last, Callbacks{})
			require.NoError(t, err)
			got, err = resumed.Marshal()
			require.NoError(t, err)
			require.Equal(t, want, got)

			// A checkpoint from another seed is refused.
			other := spec
			other.Seed = 6
			_, err = Resume(t.Context(), other, f, ckpts[0], Callbacks{})
			require.ErrorIs(t, err, ErrCheckpoint)
		})
	}
}

func TestSpecErrors(t *testing.T) {
	t.Parallel()
	f := frame(t, "iris.csv")
	cases := []struct {
		spec Spec
		is   error
		msg  string
	}{
		{Spec{Algorithm: "svm", Target: "target"}, ErrUnknownAlgorithm, `"svm"`},
		{Spec{Algorithm: "mlp", Target: "target", Params: map[string]string{"lr": "fast"}}, ErrInvalidParam, `param "lr": "fast" is not a finite number`},
		{Spec{Algorithm: "mlp", Target: "target", Params: map[string]string{"lr": "0"}}, ErrInvalidParam, `param "lr": 0 out of range (0`},
		{Spec{Algorithm: "mlp", Target: "target", Params: map[string]string{"hidden": "64,x"}}, ErrInvalidParam, `param "hidden"`},
		{Spec{Algorithm: "gbdt", Target: "target", Params: map[string]string{"depth": "3"}}, ErrInvalidParam, `param "depth": unknown`},
		{Spec{Algorithm: "gbdt", Target: "target", Params: map[string]string{"activation": "relu"}}, ErrInvalidParam, `param "activation": unknown`},
		{Spec{Algorithm: "logistic", Target: "nope"}, ErrInvalidData, `"nope"`},
		{Spec{Algorithm: "linear", Target: "target", Task: "classification"}, ErrInvalidParam, "use logistic"},
	}
	for _, tc := range cases {
		_, err := Run(t.Context(), tc.spec, f, Callbacks{})
		require.ErrorIs(t, err, tc.is, tc.msg)
		require.Contains(t, err.Error(), tc.msg)
	}
	one, err := dataset.Read(strings.NewReader("a,y\n1,0\n2,0\n3,0\n4,0\n5,0\n"), dataset.ReadOptions{})
	require.NoError(t, err)
	_, err = Run(t.Context(), Spec{Algorithm: "logistic", Target: "y"}, one, Callbacks{})
	require.ErrorIs(t, err, ErrInvalidData)
	require.Contains(t, err.Error(), "single class")

	missing, err := dataset.Read(strings.NewReader("a,y\n1,0\n,1\n3,0\n4,1\n5,0\n6,1\n"), dataset.ReadOptions{})
	require.NoError(t, err)
	_, err = Run(t.Context(), Spec{Algorithm: "logistic", Target: "y", Test: -1}, missing, Callbacks{})
	require.ErrorIs(t, err, ErrInvalidData)
	require.Contains(t, err.Error(), `row 2, column "a"`)
	_, err = Run(t.Context(), Spec{Algorithm: "logistic", Target: "y", Test: -1, Params: map[string]string{"impute": "mean"}}, missing, Callbacks{})
	require.NoError(t, err)

	sing, err := dataset.Read(strings.NewReader("a,b,y\n1,2,1\n2,4,3\n3,6,2\n4,8,5\n5,10,4\n"), dataset.ReadOptions{})
	require.NoError(t, err)
	_, err = Run(t.Context(), Spec{Algorithm: "linear", Target: "y", Test: -1, Params: map[string]string{"scale": "none"}}, sing, Callbacks{})
	require.Error(t, err)
	require.Contains(t, err.Error(), `column "b"`)
	_, err = Run(t.Context(), Spec{Algorithm: "ridge", Target: "y", Test: -1}, sing, Callbacks{})
	require.NoError(t, err)
}

// A finished run is extended to a larger budget from its last checkpoint:
// 3 epochs (rounds) resumed to 6 equal 6 uninterrupted, bit for bit; any
// other change of the spec is refused, and so is a smaller budget.
func TestExtendBudget(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		algo, budget, other string
		params              map[string]string
	}{
		{"mlp", "epochs", "batch_size", map[string]string{"hidden": "16", "patience": "3", "schedule": "constant"}},
		{"gbdt", "rounds", "max_bins", map[string]string{"subsample": "0.7", "colsample": "0.6", "patience": "4"}},
	} {
		t.Run(tc.algo, func(t *testing.T) {
			t.Parallel()
			f := frame(t, "breast_cancer.csv")
			with := func(budget string, extra ...string) Spec {
				p := maps.Clone(tc.params)
				p[tc.budget] = budget
				for i := 0; i+1 < len(extra); i += 2 {
					p[extra[i]] = extra[i+1]
				}
				return Spec{Algorithm: tc.algo, Target: "target", Params: p, Seed: 5}
			}
			var last []byte
			_, err := Run(t.Context(), with("3"), f, Callbacks{CheckpointEvery: 2, OnCheckpoint: func(_ context.Context, b []byte) error {
				last = b
				return nil
			}})
			require.NoError(t, err)
			ck, err := DecodeCheckpoint(last)
			require.NoError(t, err)
			require.EqualValues(t, 3, ck.GetMlp().GetEpoch()+ck.GetGbdt().GetRound(), "the final step is checkpointed")

			full, err := Run(t.Context(), with("6"), f, Callbacks{})
			require.NoError(t, err)
			want, err := full.Marshal()
			require.NoError(t, err)
			var steps []int
			ext, err := Resume(t.Context(), with("6"), f, last, Callbacks{OnEvent: func(e Event) {
				if e.Split == "train" && !e.Final {
					steps = append(steps, e.Step)
				}
			}})
			require.NoError(t, err)
			got, err := ext.Marshal()
			require.NoError(t, err)
			require.Equal(t, want, got)
			require.Equal(t, []int{4, 5, 6}, steps)

			other := with("6")
			other.Seed = 6
			for _, spec := range []Spec{with("2"), with("6", tc.other, "32"), other} {
				_, err = Resume(t.Context(), spec, f, last, Callbacks{})
				require.ErrorIs(t, err, ErrCheckpoint, "%v", spec)
			}
			_, err = Resume(t.Context(), with("6"), frame(t, "iris.csv"), last, Callbacks{})
			require.Error(t, err)
		})
	}
}

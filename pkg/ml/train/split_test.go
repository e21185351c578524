package train

import (
	"testing"

	"github.com/stretchr/testify/require"

	schedulerv1 "github.com/bmaas/bmaas/api/bmaas/scheduler/v1"
)

// SplitOf gives the rows a run trains, validates and tests on.
func TestSplitOfIsTheRunsSplit(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name      string
		data      string
		spec      Spec
		val, test int // expected sizes
	}{
		{"classifier, defaults", "iris.csv", Spec{Algorithm: "logistic", Target: "target", Seed: 3}, 0, 30},
		{"early stopping holds out validation", "iris.csv", Spec{Algorithm: "mlp", Target: "target", Seed: 1}, 15, 30},
		{"no early stopping, no validation", "iris.csv",
			Spec{Algorithm: "gbdt", Target: "target", Seed: 1, Params: map[string]string{"patience": "0"}}, 0, 30},
		{"explicit fractions", "iris.csv", Spec{Algorithm: "mlp", Target: "target", Seed: 9, Validation: 0.2, Test: 0.4}, 30, 60},
		{"nothing held out", "iris.csv", Spec{Algorithm: "logistic", Target: "target", Test: -1}, 0, 0},
		{"regression", "diabetes.csv", Spec{Algorithm: "ridge", Target: "target", Seed: 2}, 0, 88},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			f := frame(t, c.data)
			s, err := SplitOf(c.spec, f)
			require.NoError(t, err)
			require.Len(t, s.Validation, c.val)
			require.Len(t, s.Test, c.test)
			require.Len(t, s.Train, f.NumRows()-c.val-c.test)
			seen := map[int]bool{}
			for _, part := range [][]int{s.Train, s.Validation, s.Test} {
				require.IsIncreasing(t, part)
				for _, r := range part {
					require.False(t, seen[r], "row %d in two parts", r)
					seen[r] = true
				}
			}
			j, err := prepare(c.spec, f)
			require.NoError(t, err)
			require.Equal(t, j.splits["train"], s.Train)
			require.Equal(t, j.splits["validation"], s.Validation)
			require.Equal(t, j.splits["test"], s.Test)
		})
	}
}

func TestSplitOfRefusesWhatRunRefuses(t *testing.T) {
	t.Parallel()
	f := frame(t, "iris.csv")
	_, err := SplitOf(Spec{Algorithm: "logistic", Target: "target", Validation: 0.5, Test: 0.5}, f)
	require.ErrorIs(t, err, ErrInvalidParam)
	_, err = SplitOf(Spec{Algorithm: "logistic", Target: "nope"}, f)
	require.ErrorIs(t, err, ErrInvalidData)
	_, err = SplitOf(Spec{Algorithm: "boosting", Target: "target"}, f)
	require.ErrorIs(t, err, ErrUnknownAlgorithm)
}

func TestRuntimeSpec(t *testing.T) {
	t.Parallel()
	rt := &schedulerv1.BuiltinRuntime{Algorithm: "mlp", TargetColumn: "y", Hyperparameters: map[string]string{"lr": "0.1"},
		Preprocessing: []string{"scale = minmax", "lr=0.5", "novalue"}, TestFraction: 0.3, ValidationFraction: 0.1, Seed: 7}
	require.Equal(t, Spec{Algorithm: "mlp", Target: "y", Params: map[string]string{"lr": "0.1", "scale": "minmax"},
		Validation: 0.1, Test: 0.3, Seed: 7}, RuntimeSpec(rt))
	require.Equal(t, map[string]string{}, RuntimeSpec(&schedulerv1.BuiltinRuntime{}).Params)
}

package evaluator

import (
	"fmt"
	"slices"
	"strconv"

	schedulerv1 "github.com/bmaas/bmaas/api/bmaas/scheduler/v1"
	"github.com/bmaas/bmaas/pkg/ml/artifact"
	"github.com/bmaas/bmaas/pkg/ml/dataset"
)

// testSplit returns the held-out test rows of the training job that made
// m: the job's dataset cut exactly as pkg/ml/train cuts it (the same
// fractions, defaults, seed and class strata), so the rows are the ones
// the version's test_* metrics were computed on.
func testSplit(m *artifact.Model, rt *schedulerv1.BuiltinRuntime, f *dataset.Frame) (*dataset.Frame, error) {
	test, val := rt.TestFraction, rt.ValidationFraction
	if test == 0 {
		test = 0.2
	}
	if val == 0 && (rt.Algorithm == "mlp" || rt.Algorithm == "gbdt") {
		if p, err := strconv.Atoi(m.Proto.Hyperparameters["patience"]); err == nil && p > 0 {
			val = 0.1
		}
	}
	test, val = max(test, 0), max(val, 0)
	if test == 0 {
		return nil, fmt.Errorf("job held out no test rows")
	}
	var strata []int32
	if m.IsClassifier() {
		tc, err := f.Col(m.Proto.Target)
		if err != nil {
			return nil, err
		}
		index := map[string]int32{}
		for i, l := range m.Labels() {
			index[l] = int32(i)
		}
		strata = make([]int32, tc.Len())
		for r := range strata {
			i, ok := index[tc.String(r)]
			if !ok {
				return nil, fmt.Errorf("row %d: class %q unknown to the model", r+1, tc.String(r))
			}
			strata[r] = i
		}
	}
	parts, err := dataset.Split(f.NumRows(), []float64{1 - val - test, val, test}, uint64(rt.Seed), strata)
	if err != nil {
		return nil, err
	}
	rows := parts[2]
	slices.Sort(rows)
	return f.Take(rows), nil
}

package evaluator

import (
	"errors"

	schedulerv1 "github.com/bmaas/bmaas/api/bmaas/scheduler/v1"
	"github.com/bmaas/bmaas/pkg/ml/dataset"
	"github.com/bmaas/bmaas/pkg/ml/train"
)

// testSplit returns the held-out test rows of the builtin training job
// whose runtime is rt, f being the dataset version it trained on:
// pkg/ml/train cuts them as it cut them for the job, so they are the rows
// the version's test_* metrics were computed on.
func testSplit(rt *schedulerv1.BuiltinRuntime, f *dataset.Frame) (*dataset.Frame, error) {
	s, err := train.SplitOf(train.RuntimeSpec(rt), f)
	if err != nil {
		return nil, err
	}
	if len(s.Test) == 0 {
		return nil, errors.New("job held out no test rows")
	}
	return f.Take(s.Test), nil
}

package evaluator

import (
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"

	evaluatorv1 "github.com/bmaas/bmaas/api/bmaas/evaluator/v1"
	"github.com/bmaas/bmaas/pkg/apierr"
)

// CreateExperiment refuses a search space too large to enumerate, or with
// bounds a sampler cannot draw from, as InvalidArgument naming the field,
// before it calls any other service.
func TestCreateExperimentRejectsUnboundedSpaces(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		searcher string
		params   []*evaluatorv1.SearchParam
		want     string
	}{
		"grid points": {"grid", []*evaluatorv1.SearchParam{{Name: "C", Type: evaluatorv1.ParamType_PARAM_TYPE_UNIFORM, Low: 0.1, High: 10, GridPoints: 2_000_000_000}},
			"experiment.params[0].grid_points: at most 1000, got 2000000000"},
		"grid combinations": {"grid", []*evaluatorv1.SearchParam{
			{Name: "C", Type: evaluatorv1.ParamType_PARAM_TYPE_UNIFORM, Low: 0.1, High: 10, GridPoints: 1000},
			{Name: "tol", Type: evaluatorv1.ParamType_PARAM_TYPE_UNIFORM, Low: 0.1, High: 10, GridPoints: 1000}},
			"experiment.params: the grid has more than 10000 combinations; use fewer grid_points or values, or another searcher"},
		"int bounds": {"random", []*evaluatorv1.SearchParam{{Name: "max_iter", Type: evaluatorv1.ParamType_PARAM_TYPE_INT, Low: 1, High: 1e300}},
			"experiment.params[0].high: an int bound must lie within ±9007199254740992 (2^53), got 1e+300"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			x := &evaluatorv1.Experiment{Model: "iris", Searcher: tc.searcher, Metric: "test_accuracy", MaxTrials: 4,
				Params:   tc.params,
				Template: &evaluatorv1.TrialTemplate{Algorithm: "logistic", Dataset: "iris"}}
			var err error
			require.NotPanics(t, func() { _, err = (&Evaluator{}).CreateExperiment(t.Context(), x) })
			require.Equal(t, codes.InvalidArgument, apierr.Code(err), "%v", err)
			require.EqualError(t, err, tc.want)
		})
	}
}

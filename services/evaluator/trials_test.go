package evaluator

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	evaluatorv1 "github.com/bmaas/bmaas/api/bmaas/evaluator/v1"
	"github.com/bmaas/bmaas/services/evaluator/search"
)

// TestSummarizeStopsDroppedTrials: trials ASHA left paused at a rung are
// stopped, with the rung they reached, once the experiment has ended;
// while it runs they stay paused (ASHA may still promote them).
func TestSummarizeStopsDroppedTrials(t *testing.T) {
	t.Parallel()
	e := &Evaluator{now: time.Now}
	pass := func(state evaluatorv1.ExperimentState) *pass {
		return &pass{
			x: &evaluatorv1.Experiment{Id: "x", Searcher: search.ASHA, State: state},
			st: &search.State{Trials: []*search.Trial{
				{ID: "t1", Status: search.Paused, Rung: 1, Epochs: 3},
				{ID: "t2", Status: search.Done, Rung: 2, Epochs: 9, Scored: true, Score: 1},
			}},
			trials: map[string]*evaluatorv1.Trial{
				"t1": {Id: "t1", State: evaluatorv1.TrialState_TRIAL_STATE_RUNNING, Epochs: 3},
				"t2": {Id: "t2", State: evaluatorv1.TrialState_TRIAL_STATE_RUNNING, Epochs: 9},
			},
		}
	}
	p := pass(evaluatorv1.ExperimentState_EXPERIMENT_STATE_RUNNING)
	e.summarize(p)
	require.Equal(t, evaluatorv1.TrialState_TRIAL_STATE_PAUSED, p.trials["t1"].State)

	p = pass(evaluatorv1.ExperimentState_EXPERIMENT_STATE_SUCCEEDED)
	e.summarize(p)
	require.Equal(t, evaluatorv1.TrialState_TRIAL_STATE_STOPPED, p.trials["t1"].State)
	require.Equal(t, int32(1), p.trials["t1"].Rung)
	require.Contains(t, p.trials["t1"].Message, "rung 1")
	require.Equal(t, evaluatorv1.TrialState_TRIAL_STATE_SUCCEEDED, p.trials["t2"].State)
}

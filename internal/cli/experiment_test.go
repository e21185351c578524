package cli

import (
	"context"
	"encoding/json"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/test/bufconn"

	evaluatorv1 "github.com/bmaas/bmaas/api/bmaas/evaluator/v1"
)

func TestReadExampleExperiment(t *testing.T) {
	x, err := readExperiment(filepath.Join("..", "..", "examples", "experiments", "digits-mlp-asha.yaml"))
	require.NoError(t, err)
	require.Equal(t, "asha", x.Searcher)
	require.Equal(t, int32(27), x.MaxTrials)
	require.Equal(t, evaluatorv1.ParamType_PARAM_TYPE_LOG_UNIFORM, x.Params[0].Type)
	require.Equal(t, "optimizer", x.Params[3].Condition.Parent)
	require.Equal(t, "mlp", x.Template.Algorithm)
}

// fakeEvaluator plays a scripted experiment: each GetExperiment moves to
// the next step (the last one repeats), ListTrials answers that step's
// trials.
type fakeEvaluator struct {
	evaluatorv1.UnimplementedEvaluatorServiceServer
	mu     sync.Mutex
	steps  []*evaluatorv1.Experiment
	trials [][]*evaluatorv1.Trial
	at     int
}

func (f *fakeEvaluator) start(t *testing.T) *globals {
	lis := bufconn.Listen(1 << 20)
	srv := grpc.NewServer()
	evaluatorv1.RegisterEvaluatorServiceServer(srv, f)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return &globals{dial: func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }}
}

func (f *fakeEvaluator) CreateExperiment(context.Context, *evaluatorv1.CreateExperimentRequest) (*evaluatorv1.CreateExperimentResponse, error) {
	return &evaluatorv1.CreateExperimentResponse{Experiment: f.steps[0]}, nil
}

func (f *fakeEvaluator) GetExperiment(context.Context, *evaluatorv1.GetExperimentRequest) (*evaluatorv1.GetExperimentResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	x := f.steps[min(f.at, len(f.steps)-1)]
	f.at++
	return &evaluatorv1.GetExperimentResponse{Experiment: x}, nil
}

func (f *fakeEvaluator) ListTrials(context.Context, *evaluatorv1.ListTrialsRequest) (*evaluatorv1.ListTrialsResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return &evaluatorv1.ListTrialsResponse{Trials: f.trials[min(f.at-1, len(f.trials)-1)]}, nil
}

func scriptedExperiment() *fakeEvaluator {
	const running, done = evaluatorv1.ExperimentState_EXPERIMENT_STATE_RUNNING, evaluatorv1.ExperimentState_EXPERIMENT_STATE_SUCCEEDED
	x := func(s evaluatorv1.ExperimentState, completed int32, best string, v float64) *evaluatorv1.Experiment {
		return &evaluatorv1.Experiment{Id: "x1", Model: "iris", Metric: "test_accuracy", Mode: "max", MaxTrials: 3,
			State: s, TrialsCompleted: completed, BestTrialId: best, BestValue: v}
	}
	tr := func(id string, s evaluatorv1.TrialState, v float64) *evaluatorv1.Trial {
		return &evaluatorv1.Trial{Id: id, Params: map[string]string{"C": id}, State: s, Value: v, HasValue: v > 0, TargetEpochs: 1}
	}
	const pending, run, ok = evaluatorv1.TrialState_TRIAL_STATE_PENDING, evaluatorv1.TrialState_TRIAL_STATE_RUNNING, evaluatorv1.TrialState_TRIAL_STATE_SUCCEEDED
	return &fakeEvaluator{
		steps: []*evaluatorv1.Experiment{x(running, 0, "", 0), x(running, 0, "", 0), x(running, 1, "t1", 0.8), x(done, 3, "t3", 0.95)},
		trials: [][]*evaluatorv1.Trial{
			{tr("t1", pending, 0), tr("t2", pending, 0), tr("t3", pending, 0)},
			{tr("t1", run, 0), tr("t2", run, 0), tr("t3", pending, 0)},
			{tr("t1", ok, 0.8), tr("t2", run, 0), tr("t3", run, 0)},
			{tr("t1", ok, 0.8), tr("t2", ok, 0.9), tr("t3", ok, 0.95)},
		},
	}
}

// TestExperimentWaitOnAPipe: on a pipe, --wait prints a line per change
// (the experiment's summary, a trial's new state), never the whole table
// again, and no "best - 0" before there is a best trial.
func TestExperimentWaitOnAPipe(t *testing.T) {
	t.Parallel()
	spec := filepath.Join("..", "..", "examples", "experiments", "digits-mlp-asha.yaml")
	out, _, err := run(t, scriptedExperiment().start(t), "experiment", "create", "-f", spec, "--wait")
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	seen := map[string]bool{}
	for _, l := range lines {
		require.False(t, seen[l], "printed twice: %q\n%s", l, out)
		seen[l] = true
	}
	require.LessOrEqual(t, strings.Count(out, "TRIAL"), 1, out)
	require.NotContains(t, out, "best - 0")
	require.Contains(t, lines[0], "best -")
	require.Contains(t, out, "succeeded")
	require.NotContains(t, out, "\x1b[", "no terminal escapes into a pipe")
	// t1 pending, running, succeeded: three lines; t3 last.
	require.Equal(t, 3, strings.Count(out, "C=t1"), out)

	// -o json follows quietly and prints the final experiment.
	out, _, err = run(t, scriptedExperiment().start(t), "-o", "json", "experiment", "create", "-f", spec, "--wait")
	require.NoError(t, err)
	var x struct{ State string }
	require.NoError(t, json.Unmarshal([]byte(out), &x), out)
	require.Equal(t, "EXPERIMENT_STATE_SUCCEEDED", x.State)
}

// TestTrialsSortByObjective: trials are listed best first by the
// experiment's metric and mode, trials without a value last.
func TestTrialsSortByObjective(t *testing.T) {
	t.Parallel()
	trials := []*evaluatorv1.Trial{{Id: "t1", Value: 0.5, HasValue: true}, {Id: "t2"}, {Id: "t3", Value: 0.9, HasValue: true},
		{Id: "t4", Value: 0.7, HasValue: true}}
	ids := func(ts []*evaluatorv1.Trial) (out []string) {
		for _, tr := range ts {
			out = append(out, tr.Id)
		}
		return out
	}
	sortTrials(trials, "max")
	require.Equal(t, []string{"t3", "t4", "t1", "t2"}, ids(trials))
	sortTrials(trials, "min")
	require.Equal(t, []string{"t1", "t4", "t3", "t2"}, ids(trials))
}

// TestExperimentWaitOnATerminal: on a terminal the table is redrawn in
// place: the cursor goes back up over what was drawn, which is cleared.
func TestExperimentWaitOnATerminal(t *testing.T) {
	t.Parallel()
	f := scriptedExperiment()
	var buf strings.Builder
	w := &expWatcher{w: &buf, tty: true, rows: map[string]string{}}
	w.show(f.steps[0], f.trials[0])
	require.NotContains(t, buf.String(), "\x1b[")
	require.Equal(t, 5, strings.Count(buf.String(), "\n"), "summary, header, three trials")
	w.show(f.steps[0], f.trials[0])
	require.Equal(t, 5, strings.Count(buf.String(), "\n"), "nothing changed, nothing drawn")
	w.show(f.steps[1], f.trials[1])
	require.Contains(t, buf.String(), "\x1b[5A\x1b[J")
	require.Equal(t, 2, strings.Count(buf.String(), "TRIAL"))
}

//go:build integration

package tests

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	evaluatorv1 "github.com/bmaas/bmaas/api/bmaas/evaluator/v1"
	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
	schedulerv1 "github.com/bmaas/bmaas/api/bmaas/scheduler/v1"
	"github.com/bmaas/bmaas/internal/app"
	"github.com/bmaas/bmaas/services/evaluator"
	"github.com/bmaas/bmaas/tests/harness"
)

func irisExperiment(trials, parallelism int32) *evaluatorv1.Experiment {
	return &evaluatorv1.Experiment{Model: "iris", Searcher: "random", Metric: "test_accuracy", MaxTrials: trials,
		Parallelism: parallelism, Seed: 3,
		Params:   []*evaluatorv1.SearchParam{{Name: "C", Type: evaluatorv1.ParamType_PARAM_TYPE_LOG_UNIFORM, Low: 1e-3, High: 100}},
		Template: &evaluatorv1.TrialTemplate{Algorithm: "logistic", Dataset: "iris", Seed: 7}}
}

func setupIris(t *testing.T, c *harness.Cluster) {
	uploadCSV(t, c.Registry, "iris", readExampleCSV(t, "iris.csv"))
	_, err := c.Registry.CreateModel(t.Context(), &registryv1.CreateModelRequest{Model: &registryv1.Model{Name: "iris"}})
	require.NoError(t, err)
}

func waitExperiment(t *testing.T, get func() (*evaluatorv1.Experiment, error)) *evaluatorv1.Experiment {
	t.Helper()
	var x *evaluatorv1.Experiment
	require.Eventually(t, func() bool {
		var err error
		x, err = get()
		return err == nil && x.State == evaluatorv1.ExperimentState_EXPERIMENT_STATE_SUCCEEDED
	}, 90*time.Second, 50*time.Millisecond)
	return x
}

func TestExperimentEndToEndAndBadInput(t *testing.T) {
	t.Parallel()
	c := harness.Start(t)
	ctx := t.Context()
	ec := evaluatorv1.NewEvaluatorServiceClient(c.Conn)
	setupIris(t, c)

	bad := map[string]func(x *evaluatorv1.Experiment){
		"at least one value": func(x *evaluatorv1.Experiment) {
			x.Params = append(x.Params, &evaluatorv1.SearchParam{Name: "solver", Type: evaluatorv1.ParamType_PARAM_TYPE_CATEGORICAL})
		},
		"must be below":      func(x *evaluatorv1.Experiment) { x.Params[0].Low, x.Params[0].High = 5, 1 },
		"above zero":         func(x *evaluatorv1.Experiment) { x.Params[0].Low = 0 },
		"unknown metric":     func(x *evaluatorv1.Experiment) { x.Metric = "test_happiness" },
		"needs an iterative": func(x *evaluatorv1.Experiment) { x.Searcher = "asha" },
		"process.command":    func(x *evaluatorv1.Experiment) { x.Template.Process = &schedulerv1.ProcessRuntime{} },
	}
	for want, mutate := range bad {
		x := irisExperiment(4, 2)
		mutate(x)
		_, err := ec.CreateExperiment(ctx, &evaluatorv1.CreateExperimentRequest{Experiment: x})
		require.Equal(t, codes.InvalidArgument, status.Code(err), "%s: %v", want, err)
		require.Contains(t, err.Error(), want)
	}
	list, err := ec.ListExperiments(ctx, &evaluatorv1.ListExperimentsRequest{})
	require.NoError(t, err)
	require.Empty(t, list.Experiments)

	resp, err := ec.CreateExperiment(ctx, &evaluatorv1.CreateExperimentRequest{Experiment: irisExperiment(4, 2)})
	require.NoError(t, err)
	x := waitExperiment(t, func() (*evaluatorv1.Experiment, error) {
		r, err := ec.GetExperiment(ctx, &evaluatorv1.GetExperimentRequest{Id: resp.Experiment.Id})
		return r.GetExperiment(), err
	})
	require.Equal(t, int32(4), x.TrialsCreated)
	trials, err := ec.ListTrials(ctx, &evaluatorv1.ListTrialsRequest{ExperimentId: x.Id})
	require.NoError(t, err)
	require.Len(t, trials.Trials, 4)
	best := 0.0
	for _, tr := range trials.Trials {
		require.Equal(t, evaluatorv1.TrialState_TRIAL_STATE_SUCCEEDED, tr.State, tr.Message)
		require.True(t, tr.HasValue)
		require.Positive(t, tr.ModelVersion)
		best = max(best, tr.Value)
	}
	bt, err := ec.GetBestTrial(ctx, &evaluatorv1.GetBestTrialRequest{ExperimentId: x.Id})
	require.NoError(t, err)
	require.Equal(t, best, bt.Trial.Value)
	require.Equal(t, best, x.BestValue)
}

// Two evaluators on one etcd: the leader stops mid-experiment, the
// standby finishes it; every trial ran exactly one job.
func TestEvaluatorFailoverLosesNoTrial(t *testing.T) {
	t.Parallel()
	cfg := harness.DefaultConfig(t)
	cfg.Targets = []string{app.TargetRegistry, app.TargetScheduler, app.TargetTrainerAgent}
	c := harness.StartConfig(t, cfg)
	ctx := t.Context()
	setupIris(t, c)
	cli := c.EtcdClient(t)
	sc := schedulerv1.NewSchedulerServiceClient(c.Conn)
	ecfg := evaluator.DefaultConfig()
	ecfg.LeaderTTL = time.Second
	start := func(id string) (*evaluator.Service, context.CancelFunc) {
		svc, err := evaluator.New(ecfg, evaluator.Deps{Etcd: cli, Registry: c.Registry, Scheduler: sc, ID: id})
		require.NoError(t, err)
		rctx, cancel := context.WithCancel(ctx)
		go func() { _ = svc.Run(rctx) }()
		return svc, cancel
	}
	a, stopA := start("a")
	defer stopA()
	x, err := a.Evaluator().CreateExperiment(ctx, irisExperiment(6, 2))
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		got, err := a.Evaluator().GetExperiment(ctx, x.Id)
		return err == nil && got.TrialsCompleted >= 2
	}, 60*time.Second, 20*time.Millisecond)
	b, stopB := start("b")
	defer stopB()
	stopA() // the leader goes away mid-experiment
	done := waitExperiment(t, func() (*evaluatorv1.Experiment, error) { return b.Evaluator().GetExperiment(ctx, x.Id) })
	require.Equal(t, int32(6), done.TrialsCreated)
	jobs, err := sc.ListJobs(ctx, &schedulerv1.ListJobsRequest{LabelSelector: "bmaas-experiment=" + x.Id})
	require.NoError(t, err)
	require.Len(t, jobs.Jobs, 6, "one job per trial")
	seen := map[string]bool{}
	for _, j := range jobs.Jobs {
		require.False(t, seen[j.Spec.Labels["bmaas-trial"]], "trial %s ran twice", j.Spec.Labels["bmaas-trial"])
		seen[j.Spec.Labels["bmaas-trial"]] = true
	}
}

// An experiment's promote_best on a model without a promotion policy
// promotes by the experiment's own metric and mode to the alias
// production (the documented default), and the decision says so.
func TestExperimentPromoteBestWithoutPolicy(t *testing.T) {
	t.Parallel()
	c := harness.Start(t)
	ctx := t.Context()
	ec := evaluatorv1.NewEvaluatorServiceClient(c.Conn)
	setupIris(t, c)
	x := irisExperiment(2, 2)
	x.PromoteBest = true
	resp, err := ec.CreateExperiment(ctx, &evaluatorv1.CreateExperimentRequest{Experiment: x})
	require.NoError(t, err)
	x = waitExperiment(t, func() (*evaluatorv1.Experiment, error) {
		r, err := ec.GetExperiment(ctx, &evaluatorv1.GetExperimentRequest{Id: resp.Experiment.Id})
		return r.GetExperiment(), err
	})
	best, err := ec.GetBestTrial(ctx, &evaluatorv1.GetBestTrialRequest{ExperimentId: x.Id})
	require.NoError(t, err)
	var d *evaluatorv1.Decision
	require.Eventually(t, func() bool {
		ds := decisions(t, ec, "iris")
		if len(ds) > 0 {
			d = ds[0]
		}
		return d != nil
	}, 10*time.Second, 20*time.Millisecond)
	require.Equal(t, best.Trial.ModelVersion, d.Version)
	require.Equal(t, "production", d.TargetAlias)
	require.Equal(t, "test_accuracy", d.PrimaryMetric)
	require.True(t, d.Promoted, "%v", d.Reasons)
	require.Contains(t, d.Reasons[0], "no promotion policy")
	m, err := c.Registry.GetModel(ctx, &registryv1.GetModelRequest{Name: "iris"})
	require.NoError(t, err)
	require.Equal(t, best.Trial.ModelVersion, m.Model.Aliases["production"])
}

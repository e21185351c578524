package evaluator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"strings"

	"google.golang.org/protobuf/types/known/timestamppb"

	evaluatorv1 "github.com/bmaas/bmaas/api/bmaas/evaluator/v1"
	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
	"github.com/bmaas/bmaas/pkg/apierr"
	"github.com/bmaas/bmaas/pkg/authz"
	"github.com/bmaas/bmaas/pkg/events"
	"github.com/bmaas/bmaas/pkg/iam"
	"github.com/bmaas/bmaas/pkg/ml/train"
	"github.com/bmaas/bmaas/pkg/store"
	"github.com/bmaas/bmaas/services/evaluator/search"
)

// metricNames are the names a trial metric may take after its split.
var metricNames = []string{"accuracy", "log_loss", "precision", "recall", "f1", "roc_auc", "pr_auc",
	"precision_macro", "recall_macro", "f1_macro", "precision_micro", "recall_micro", "f1_micro",
	"precision_weighted", "recall_weighted", "f1_weighted", "rmse", "mae", "r2", "mape", "explained_variance", "loss"}

// lowerIsBetter names the metrics an experiment minimises by default.
var lowerIsBetter = []string{"log_loss", "rmse", "mae", "mape", "loss"}

func checkMetric(metric string) (name string, err error) {
	split, name, ok := strings.Cut(metric, "_")
	if !ok || (split != "train" && split != "validation" && split != "test") || !contains(metricNames, name) {
		return "", apierr.Invalid("experiment.metric", "unknown metric %q: want <train|validation|test>_<%s>", metric, strings.Join(metricNames, "|"))
	}
	return name, nil
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// searchConfig turns an experiment into the searcher's configuration.
func searchConfig(x *evaluatorv1.Experiment) (search.Config, error) {
	cfg := search.Config{Searcher: x.Searcher, Maximize: x.Mode == "max", MaxTrials: int(x.MaxTrials),
		Parallelism: int(x.Parallelism), MaxEpochs: int(x.MaxEpochs), MinEpochs: int(x.MinEpochs),
		Eta: int(x.ReductionFactor), MedianStopping: x.MedianStopping, Seed: x.Seed}
	types := map[evaluatorv1.ParamType]search.Type{evaluatorv1.ParamType_PARAM_TYPE_UNIFORM: search.Uniform,
		evaluatorv1.ParamType_PARAM_TYPE_LOG_UNIFORM: search.LogUniform, evaluatorv1.ParamType_PARAM_TYPE_INT: search.Int,
		evaluatorv1.ParamType_PARAM_TYPE_CATEGORICAL: search.Categorical}
	for _, p := range x.Params {
		sp := search.Param{Name: p.Name, Type: types[p.Type], Low: p.Low, High: p.High, Values: p.Values, GridPoints: int(p.GridPoints)}
		if sp.Type == "" {
			sp.Type = search.Type(strings.ToLower(p.Type.String()))
		}
		if c := p.Condition; c != nil {
			sp.Parent, sp.ParentValues = c.Parent, c.Values
		}
		cfg.Space = append(cfg.Space, sp)
	}
	return cfg, nil
}

// CreateExperiment validates an experiment and stores it with the
// searcher's initial state; the leader starts its trials.
func (e *Evaluator) CreateExperiment(ctx context.Context, x *evaluatorv1.Experiment) (*evaluatorv1.Experiment, error) {
	if x == nil || x.Model == "" {
		return nil, apierr.Invalid("experiment.model", "required")
	}
	x = cloneExperiment(x)
	if x.Project == "" {
		x.Project = iam.ProjectFrom(ctx)
	}
	if err := iam.ProjectExists(ctx, e.st, "experiment.project", x.Project); err != nil {
		return nil, err
	}
	tpl := x.Template
	proc := tpl.GetProcess()
	switch {
	case proc != nil && proc.Command == "":
		return nil, apierr.Invalid("experiment.template.process.command", "required")
	case proc == nil && (tpl.GetAlgorithm() == "" || tpl.Dataset == ""):
		return nil, apierr.Invalid("experiment.template", "needs an algorithm and a dataset, or a process")
	}
	if tpl.TargetColumn == "" {
		tpl.TargetColumn = "target"
	}
	name, err := checkMetric(x.Metric)
	if err != nil {
		return nil, err
	}
	if err := experimentStrings(x); err != nil {
		return nil, err
	}
	switch x.Mode {
	case "":
		x.Mode = "max"
		if contains(lowerIsBetter, name) {
			x.Mode = "min"
		}
	case "max", "min":
	default:
		return nil, apierr.Invalid("experiment.mode", "max or min, not %q", x.Mode)
	}
	if x.Searcher == "" {
		x.Searcher = search.Random
	}
	if tpl.EpochsParam == "" && proc == nil {
		tpl.EpochsParam = map[string]string{"mlp": "epochs", "gbdt": "rounds"}[tpl.Algorithm]
	}
	if tpl.EpochsParam == "" && (x.Searcher == search.ASHA || x.Searcher == search.Hyperband) {
		if proc != nil {
			return nil, apierr.Invalid("experiment.template.epochs_param", "%s needs the name of the budget hyperparameter", x.Searcher)
		}
		return nil, apierr.Invalid("experiment.searcher", "%s needs an iterative algorithm (mlp, gbdt), not %q", x.Searcher, tpl.Algorithm)
	}
	if tpl.EpochsParam == "" {
		x.MaxEpochs = 0
	} else if x.MaxEpochs <= 0 {
		return nil, apierr.Invalid("experiment.max_epochs", "must be positive for %s", tpl.Algorithm)
	}
	if x.Parallelism <= 0 {
		x.Parallelism = 1
	}
	cfg, _ := searchConfig(x)
	st, err := search.New(cfg)
	if fe := (*search.FieldError)(nil); errors.As(err, &fe) {
		return nil, apierr.Invalid("experiment."+fe.Field, "%s", fe.Msg)
	}
	if err != nil {
		return nil, apierr.Invalid("experiment", "%v", strings.TrimPrefix(err.Error(), search.ErrInvalid.Error()+": "))
	}
	sample := cfg.Space.Sample(rand.New(rand.NewPCG(1, 1)))
	if _, err := train.ParseParams(tpl.Algorithm, trialParams(x, sample, max(1, int(x.MaxEpochs)))); err != nil && proc == nil {
		return nil, apierr.Invalid("experiment.params", "%v", err)
	}
	reg, err := e.registry()
	if err != nil {
		return nil, err
	}
	if _, err := reg.GetModel(ctx, &registryv1.GetModelRequest{Name: x.Model}); err != nil {
		return nil, err
	}
	if ds := tpl.Dataset + proc.GetDataset(); ds != "" {
		if _, err := reg.GetDataset(ctx, &registryv1.GetDatasetRequest{Name: ds}); err != nil {
			return nil, err
		}
	}
	x.Id = strings.ToLower(events.NewID())
	if x.Name == "" {
		x.Name = x.Id
	}
	x.State, x.CreateTime, x.UpdateTime = evaluatorv1.ExperimentState_EXPERIMENT_STATE_RUNNING, timestamppb.New(e.now()), timestamppb.New(e.now())
	fillExperiment(x)
	b, err := json.Marshal(st)
	if err != nil {
		return nil, err
	}
	if _, err := e.st.Commit(ctx, []store.Cond{{Key: experimentKey(x.Id)}}, store.Put(experimentKey(x.Id), x),
		store.PutRaw(searchStateKey(x.Id), b, 0)); err != nil {
		return nil, err
	}
	e.publish(events.KindExperiment, x.Id, "created", x)
	return x, nil
}

// trialParams are a trial's hyperparameters: the template's, the trial's
// and the epoch budget.
func trialParams(x *evaluatorv1.Experiment, params map[string]string, epochs int) map[string]string {
	out := maps.Clone(x.Template.Hyperparameters)
	if out == nil {
		out = map[string]string{}
	}
	if p := x.Template.GetProcess(); p != nil {
		out = maps.Clone(p.Hyperparameters)
		if out == nil {
			out = map[string]string{}
		}
		maps.Copy(out, x.Template.Hyperparameters)
	}
	maps.Copy(out, params)
	if p := x.Template.EpochsParam; p != "" && epochs > 0 {
		out[p] = itoa(int64(epochs))
	}
	return out
}

// projectOfExperiment is an experiment's project: one from before
// projects belongs to the default one.
func projectOfExperiment(x *evaluatorv1.Experiment) string {
	if x.GetProject() != "" {
		return x.GetProject()
	}
	return iam.DefaultProject
}

// GetExperiment reads an experiment.
func (e *Evaluator) GetExperiment(ctx context.Context, id string) (*evaluatorv1.Experiment, error) {
	x, _, err := e.readExperiment(ctx, id)
	return x, err
}

func (e *Evaluator) readExperiment(ctx context.Context, id string) (*evaluatorv1.Experiment, int64, error) {
	if id == "" || strings.Contains(id, "/") {
		return nil, 0, apierr.Invalid("id", "required, without slashes")
	}
	x := &evaluatorv1.Experiment{}
	rev, err := e.st.Get(ctx, experimentKey(id), x)
	if errors.Is(err, store.ErrNotFound) {
		return nil, 0, apierr.NotFound("experiment", id)
	}
	if err != nil {
		return nil, 0, err
	}
	if err := iam.CheckIn(ctx, "experiments", "experiment", id, x.GetProject(), authz.Read); err != nil {
		return nil, 0, err
	}
	return fillExperiment(x), rev, nil
}

// ListExperiments pages through experiments, optionally of one model.
func (e *Evaluator) ListExperiments(ctx context.Context, req *evaluatorv1.ListExperimentsRequest) (*evaluatorv1.ListExperimentsResponse, error) {
	n, err := store.PageSize("page_size", req.GetPageSize())
	if err != nil {
		return nil, err
	}
	items, next, err := store.List(ctx, e.st, experimentsPrefix(), n, req.GetPageToken(),
		func() *evaluatorv1.Experiment { return &evaluatorv1.Experiment{} },
		func(x *evaluatorv1.Experiment) bool {
			return (req.Model == "" || x.Model == req.Model) && (req.GetProject() == "" || projectOfExperiment(x) == req.GetProject()) &&
				iam.CheckIn(ctx, "experiments", "experiment", x.GetId(), x.GetProject(), authz.Read) == nil
		})
	if err != nil {
		return nil, err
	}
	out := &evaluatorv1.ListExperimentsResponse{NextPageToken: next}
	for _, it := range items {
		out.Experiments = append(out.Experiments, fillExperiment(it.Msg))
	}
	return out, nil
}

// SetExperimentState moves an experiment: pause (RUNNING only), resume
// (PAUSED only) or cancel (any live state).
func (e *Evaluator) SetExperimentState(ctx context.Context, id string, to evaluatorv1.ExperimentState) (*evaluatorv1.Experiment, error) {
	for range 10 {
		x, rev, err := e.readExperiment(ctx, id)
		if err != nil {
			return nil, err
		}
		if err := iam.CheckIn(ctx, "experiments", "experiment", id, x.GetProject(), authz.Write); err != nil {
			return nil, err
		}
		from := x.State
		ok := map[evaluatorv1.ExperimentState]bool{
			evaluatorv1.ExperimentState_EXPERIMENT_STATE_PAUSED:    from == evaluatorv1.ExperimentState_EXPERIMENT_STATE_RUNNING,
			evaluatorv1.ExperimentState_EXPERIMENT_STATE_RUNNING:   from == evaluatorv1.ExperimentState_EXPERIMENT_STATE_PAUSED,
			evaluatorv1.ExperimentState_EXPERIMENT_STATE_CANCELLED: live(from),
		}[to]
		if !ok {
			return nil, apierr.Precondition("experiment %s is %s; cannot move to %s", id, from, to)
		}
		x.State, x.UpdateTime = to, timestamppb.New(e.now())
		if to == evaluatorv1.ExperimentState_EXPERIMENT_STATE_CANCELLED {
			x.CompleteTime = x.UpdateTime
		}
		_, err = e.st.Commit(ctx, []store.Cond{{Key: experimentKey(id), Rev: rev}}, store.Put(experimentKey(id), x))
		if store.IsStale(err) {
			continue
		}
		if err != nil {
			return nil, err
		}
		e.publish(events.KindExperiment, id, strings.ToLower(strings.TrimPrefix(to.String(), "EXPERIMENT_STATE_")), x)
		return x, nil
	}
	return nil, apierr.Conflict("experiment %s keeps changing; retry", id)
}

func live(s evaluatorv1.ExperimentState) bool {
	return s == evaluatorv1.ExperimentState_EXPERIMENT_STATE_RUNNING || s == evaluatorv1.ExperimentState_EXPERIMENT_STATE_PAUSED
}

// ListTrials pages through an experiment's trials.
func (e *Evaluator) ListTrials(ctx context.Context, req *evaluatorv1.ListTrialsRequest) (*evaluatorv1.ListTrialsResponse, error) {
	if _, err := e.GetExperiment(ctx, req.GetExperimentId()); err != nil {
		return nil, err
	}
	n, err := store.PageSize("page_size", req.GetPageSize())
	if err != nil {
		return nil, err
	}
	items, next, err := store.List(ctx, e.st, trialsPrefix(req.ExperimentId), n, req.GetPageToken(),
		func() *evaluatorv1.Trial { return &evaluatorv1.Trial{} }, nil)
	if err != nil {
		return nil, err
	}
	out := &evaluatorv1.ListTrialsResponse{NextPageToken: next}
	for _, it := range items {
		out.Trials = append(out.Trials, it.Msg)
	}
	return out, nil
}

// GetBestTrial returns the experiment's best trial so far.
func (e *Evaluator) GetBestTrial(ctx context.Context, id string) (*evaluatorv1.Trial, error) {
	x, err := e.GetExperiment(ctx, id)
	if err != nil {
		return nil, err
	}
	if x.BestTrialId == "" {
		return nil, apierr.NotFound("best trial of experiment", id)
	}
	t := &evaluatorv1.Trial{}
	if _, err := e.st.Get(ctx, trialKey(id, x.BestTrialId), t); err != nil {
		return nil, fmt.Errorf("best trial %s: %w", x.BestTrialId, err)
	}
	return t, nil
}

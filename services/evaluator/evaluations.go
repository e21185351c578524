package evaluator

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"

	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	evaluatorv1 "github.com/bmaas/bmaas/api/bmaas/evaluator/v1"
	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
	schedulerv1 "github.com/bmaas/bmaas/api/bmaas/scheduler/v1"
	"github.com/bmaas/bmaas/pkg/apierr"
	"github.com/bmaas/bmaas/pkg/authz"
	"github.com/bmaas/bmaas/pkg/events"
	"github.com/bmaas/bmaas/pkg/iam"
	"github.com/bmaas/bmaas/pkg/ml/artifact"
	"github.com/bmaas/bmaas/pkg/ml/dataset"
	"github.com/bmaas/bmaas/pkg/ml/train"
	"github.com/bmaas/bmaas/pkg/store"
)

// Triggers of an evaluation.
const (
	TriggerManual     = "manual"
	TriggerAuto       = "auto"
	TriggerExperiment = "experiment"
)

// CreateEvaluation evaluates a version on a dataset version, or on the
// test split of job_id, in this process, and stores the result. Automatic
// evaluations get an ID made of the version and the dataset version, so a
// second request for the same pair returns the first result.
func (e *Evaluator) CreateEvaluation(ctx context.Context, req *evaluatorv1.Evaluation, trigger string) (*evaluatorv1.Evaluation, error) {
	if req == nil || req.Model == "" {
		return nil, apierr.Invalid("evaluation.model", "required")
	}
	if req.Dataset == "" && req.JobId == "" {
		return nil, apierr.Invalid("evaluation.dataset", "name a dataset, or a job_id to evaluate on its test split")
	}
	v, m, err := e.loadModel(ctx, req.Model, versionRef(req.ModelVersion, req.Version))
	if err != nil {
		return nil, err
	}
	ev := &evaluatorv1.Evaluation{Model: v.Model, Version: itoa(v.Version), Trigger: trigger, RunsOn: "evaluator",
		State: evaluatorv1.EvaluationState_EVALUATION_STATE_SUCCEEDED, CreateTime: timestamppb.New(e.now())}
	var f *dataset.Frame
	if req.JobId != "" {
		ev.JobId, ev.Split = req.JobId, splitTest
		if f, err = e.jobTestFrame(ctx, ev, req.JobId, m, v); err != nil {
			return nil, err
		}
	} else {
		dv, df, err := e.loadDataset(ctx, req.Dataset, datasetRef(req))
		if err != nil {
			return nil, err
		}
		ev.Dataset, ev.DatasetVersion, ev.Split, f = dv.Dataset, itoa(dv.Version), splitAll, df
	}
	ev.Id = events.NewID()
	if trigger != TriggerManual {
		ev.Id = autoID(v, ev)
		if old, err := e.GetEvaluation(ctx, ev.Id); err == nil {
			return old, nil // done before: a redelivered event
		}
	}
	var o *outcome
	if m != nil {
		o, err = evaluateFrame(m, f)
	} else {
		o, ev.RunsOn, err = e.evaluateServed(ctx, v, f)
	}
	if err != nil {
		return nil, err
	}
	ev.Metrics, ev.ConfusionMatrix, ev.Drift, ev.Rows = o.metrics, o.confusion, o.drift, o.rows
	for _, d := range o.drift {
		ev.DriftScore = max(ev.DriftScore, d.Psi)
	}
	if o.skipped > 0 {
		ev.Message = fmt.Sprintf("%d rows skipped (unknown class or missing target)", o.skipped)
	}
	ev.CompleteTime = timestamppb.New(e.now())
	return e.record(ctx, v, ev)
}

// datasetRef is the dataset version a create request names: the number
// when set, else the deprecated string (empty: the latest).
func datasetRef(req *evaluatorv1.Evaluation) string {
	if req.DatasetVersionNumber > 0 {
		return itoa(req.DatasetVersionNumber)
	}
	return req.DatasetVersion
}

// autoID keys an automatic evaluation by version and dataset version.
func autoID(v *registryv1.ModelVersion, ev *evaluatorv1.Evaluation) string {
	if ev.Split == splitTest {
		return fmt.Sprintf("%s-v%d-%s-v%s-test", v.Model, v.Version, ev.Dataset, ev.DatasetVersion)
	}
	return fmt.Sprintf("%s-v%d-%s-v%s", v.Model, v.Version, ev.Dataset, ev.DatasetVersion)
}

// jobTestFrame loads the dataset version a job trained on and cuts its
// test split: a builtin job's as pkg/ml/train cut it, a process job's as
// its script held rows out with bmaas.train.holdout (its
// validation_fraction and seed hyperparameters).
func (e *Evaluator) jobTestFrame(ctx context.Context, ev *evaluatorv1.Evaluation, jobID string, m *artifact.Model, v *registryv1.ModelVersion) (*dataset.Frame, error) {
	spec, err := e.jobSpec(ctx, jobID)
	if err != nil {
		return nil, err
	}
	name, version := spec.GetBuiltin().GetDataset(), spec.GetBuiltin().GetDatasetVersion()
	if p := spec.GetProcess(); p != nil {
		name, version = p.Dataset, p.DatasetVersion
	}
	if name == "" {
		return nil, apierr.Precondition("job %s trained on no dataset of the registry; its test split is unknown to the platform", jobID)
	}
	if version == 0 && v.GetLineage().GetDatasetVersion() > 0 {
		version = v.Lineage.DatasetVersion
	}
	dv, f, err := e.loadDataset(ctx, name, itoa(version))
	if err != nil {
		return nil, err
	}
	ev.Dataset, ev.DatasetVersion = dv.Dataset, itoa(dv.Version)
	if p := spec.GetProcess(); p != nil {
		fraction, seed, err := train.HoldoutOf(p)
		if err != nil {
			return nil, apierr.Precondition("test split of job %s: %v", jobID, err)
		}
		rows := train.Holdout(f.NumRows(), fraction, seed)
		if len(rows) == 0 {
			return nil, apierr.Precondition("test split of job %s: it held out no rows (validation_fraction %g of %d rows)", jobID, fraction, f.NumRows())
		}
		return f.Take(rows), nil
	}
	if err := checkColumns(m, f); err != nil {
		return nil, err
	}
	test, err := testSplit(spec.GetBuiltin(), f)
	if err != nil {
		return nil, apierr.Precondition("test split of job %s: %v", jobID, err)
	}
	return test, nil
}

// record stores the evaluation unless one with its ID exists (then that
// one is returned), attaches its metrics to the version and publishes
// bmaas.evaluation.<id>.completed.
func (e *Evaluator) record(ctx context.Context, v *registryv1.ModelVersion, ev *evaluatorv1.Evaluation) (*evaluatorv1.Evaluation, error) {
	fillEvaluation(ev)
	key := evaluationKey(ev.Id)
	if _, err := e.st.Commit(ctx, []store.Cond{{Key: key}}, store.Put(key, ev)); err != nil {
		if store.IsStale(err) {
			return e.GetEvaluation(ctx, ev.Id)
		}
		return nil, err
	}
	if ev.Split != splitTest && ev.State == evaluatorv1.EvaluationState_EVALUATION_STATE_SUCCEEDED {
		attach := map[string]float64{}
		prefix := "eval_" + strings.ReplaceAll(ev.Dataset, "-", "_") + "_"
		for k, x := range ev.Metrics {
			attach[prefix+k] = x
		}
		attach[prefix+"drift_psi"] = ev.DriftScore
		if err := e.attach(ctx, v, attach); err != nil {
			e.log.Warn("attach evaluation metrics", "model", v.Model, "version", v.Version, "err", err)
		}
	}
	e.publish(events.KindEvaluation, ev.Id, "completed", ev)
	return ev, nil
}

// attach sets metrics of the version's, one update_mask path per metric.
func (e *Evaluator) attach(ctx context.Context, v *registryv1.ModelVersion, ms map[string]float64) error {
	reg, err := e.registry()
	if err != nil {
		return err
	}
	mask := &fieldmaskpb.FieldMask{}
	for k := range ms {
		mask.Paths = append(mask.Paths, "metrics."+k)
	}
	_, err = reg.UpdateModelVersion(ctx, &registryv1.UpdateModelVersionRequest{Model: v.Model, Version: itoa(v.Version),
		Metrics: maps.Clone(ms), UpdateMask: mask})
	return err
}

// GetEvaluation reads one evaluation.
func (e *Evaluator) GetEvaluation(ctx context.Context, id string) (*evaluatorv1.Evaluation, error) {
	if id == "" || strings.Contains(id, "/") {
		return nil, apierr.Invalid("id", "required, without slashes")
	}
	ev := &evaluatorv1.Evaluation{}
	if _, err := e.st.Get(ctx, evaluationKey(id), ev); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, apierr.NotFound("evaluation", id)
		}
		return nil, err
	}
	if err := iam.CheckIn(ctx, "evaluations", "evaluation", id, iam.ProjectOfName(ev.Model), authz.Read); err != nil {
		return nil, err
	}
	return fillEvaluation(ev), nil
}

// ListEvaluations pages through the evaluations of the call's project
// (those of its models) matching the filters.
func (e *Evaluator) ListEvaluations(ctx context.Context, req *evaluatorv1.ListEvaluationsRequest) (*evaluatorv1.ListEvaluationsResponse, error) {
	n, err := store.PageSize("page_size", req.GetPageSize())
	if err != nil {
		return nil, err
	}
	project := iam.ProjectFrom(ctx)
	keep := func(ev *evaluatorv1.Evaluation) bool {
		return iam.InProject(ev.Model, project) && (req.Model == "" || ev.Model == req.Model) && (req.Version == 0 || ev.Version == itoa(req.Version)) &&
			(req.Dataset == "" || ev.Dataset == req.Dataset) && (req.State == 0 || ev.State == req.State)
	}
	items, next, err := store.List(ctx, e.st, evaluationsPrefix(), n, req.GetPageToken(),
		func() *evaluatorv1.Evaluation { return &evaluatorv1.Evaluation{} }, keep)
	if err != nil {
		return nil, err
	}
	out := &evaluatorv1.ListEvaluationsResponse{NextPageToken: next}
	for _, it := range items {
		out.Evaluations = append(out.Evaluations, fillEvaluation(it.Msg))
	}
	return out, nil
}

// jobSpec fetches a training job's spec: a builtin job's, or a process
// job's whose version is evaluated on the rows its script held out.
func (e *Evaluator) jobSpec(ctx context.Context, id string) (*schedulerv1.JobSpec, error) {
	sc, err := e.scheduler()
	if err != nil {
		return nil, err
	}
	resp, err := sc.GetJob(ctx, &schedulerv1.GetJobRequest{Id: id})
	if err != nil {
		return nil, err
	}
	spec := resp.GetJob().GetSpec()
	if spec.GetBuiltin() == nil && spec.GetProcess() == nil {
		return nil, apierr.Precondition("job %s is not a training job; it has no test split", id)
	}
	return spec, nil
}

package evaluator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	evaluatorv1 "github.com/bmaas/bmaas/api/bmaas/evaluator/v1"
	schedulerv1 "github.com/bmaas/bmaas/api/bmaas/scheduler/v1"
	"github.com/bmaas/bmaas/pkg/apierr"
	"github.com/bmaas/bmaas/pkg/events"
	"github.com/bmaas/bmaas/pkg/store"
	"github.com/bmaas/bmaas/services/evaluator/search"
)

// pass is one reconcile of one experiment.
type pass struct {
	x       *evaluatorv1.Experiment
	st      *search.State
	trials  map[string]*evaluatorv1.Trial
	cancels []string
	dirty   bool
	// finished: the searcher finished in this pass.
	finished bool
}

// drive feeds the experiment's job outcomes to its searcher, carries out
// the searcher's actions, and commits the new state, trials and summary in
// one transaction fenced by the leader's term and the revisions read.
// Jobs are submitted with labels naming experiment, trial and sequence and
// looked up by them first, so a job is never submitted twice; a trial is
// committed before its job is submitted, so the job always has the
// committed parameters. pending reports trials committed and not yet
// submitted.
func (e *Evaluator) drive(ctx context.Context, fence clientv3.Cmp, x *evaluatorv1.Experiment, xrev int64) (pending bool, err error) {
	resp, err := e.cli.Get(ctx, searchStateKey(x.Id))
	if err != nil || len(resp.Kvs) == 0 {
		return false, fmt.Errorf("search state: %v", err)
	}
	p := &pass{x: x, st: &search.State{}, trials: map[string]*evaluatorv1.Trial{}}
	if err := json.Unmarshal(resp.Kvs[0].Value, p.st); err != nil {
		return false, fmt.Errorf("decode search state: %w", err)
	}
	stRev := resp.Kvs[0].ModRevision
	items, _, err := store.List(ctx, e.st, trialsPrefix(x.Id), store.MaxPageSize, "",
		func() *evaluatorv1.Trial { return &evaluatorv1.Trial{} }, nil)
	if err != nil {
		return false, err
	}
	for _, it := range items {
		p.trials[it.Msg.Id] = it.Msg
	}
	if x.State == evaluatorv1.ExperimentState_EXPERIMENT_STATE_CANCELLED {
		e.cancelAll(p)
	} else if err := e.advance(ctx, p); err != nil {
		return false, err
	}
	if !p.dirty {
		return false, nil
	}
	e.summarize(p)
	b, err := json.Marshal(p.st)
	if err != nil {
		return false, err
	}
	ops := []clientv3.Op{clientv3.OpPut(searchStateKey(x.Id), string(b))}
	for _, t := range p.trials {
		tb, err := proto.Marshal(t)
		if err != nil {
			return false, err
		}
		ops = append(ops, clientv3.OpPut(trialKey(x.Id, t.Id), string(tb)))
	}
	xb, err := proto.Marshal(x)
	if err != nil {
		return false, err
	}
	ops = append(ops, clientv3.OpPut(experimentKey(x.Id), string(xb)))
	tr, err := e.cli.Txn(ctx).If(fence,
		clientv3.Compare(clientv3.ModRevision(searchStateKey(x.Id)), "=", stRev),
		clientv3.Compare(clientv3.ModRevision(experimentKey(x.Id)), "=", xrev)).Then(ops...).Commit()
	if err != nil {
		return false, fmt.Errorf("commit experiment %s: %w", x.Id, err)
	}
	if !tr.Succeeded {
		return false, nil // deposed, or the experiment changed (pause, cancel): the next pass re-reads
	}
	e.afterCommit(ctx, p)
	return p.unsubmitted(), nil
}

// unsubmitted reports running trials of a live, unpaused experiment whose
// job is not submitted yet.
func (p *pass) unsubmitted() bool {
	if p.x.State != evaluatorv1.ExperimentState_EXPERIMENT_STATE_RUNNING {
		return false
	}
	for _, t := range p.st.Trials {
		if rec := p.trials[t.ID]; t.Status == search.Running && rec != nil && rec.JobId == "" {
			return true
		}
	}
	return false
}

// advance runs the searcher on this pass's job outcomes.
func (e *Evaluator) advance(ctx context.Context, p *pass) error {
	acts := p.st.Step(nil)
	for _, t := range p.st.Trials {
		rec := p.trials[t.ID]
		if t.Status != search.Running || rec == nil {
			continue
		}
		if rec.JobId == "" {
			if p.x.State == evaluatorv1.ExperimentState_EXPERIMENT_STATE_PAUSED {
				continue
			}
			if err := e.submit(ctx, p.x, rec); err != nil {
				return fmt.Errorf("submit trial %s: %w", rec.Id, err)
			}
			p.dirty = true
			continue
		}
		ev, err := e.observe(ctx, p, t, rec)
		if err != nil {
			return err
		}
		if ev != nil {
			acts = append(acts, p.st.Step(ev)...)
			p.dirty = true
		}
	}
	for _, a := range acts {
		p.dirty = true
		e.act(p, a)
	}
	return nil
}

// observe turns a trial's job into a searcher event (nil: nothing new).
func (e *Evaluator) observe(ctx context.Context, p *pass, t *search.Trial, rec *evaluatorv1.Trial) (*search.Event, error) {
	sc, err := e.scheduler()
	if err != nil {
		return nil, err
	}
	resp, err := sc.GetJob(ctx, &schedulerv1.GetJobRequest{Id: rec.JobId})
	if err != nil {
		return nil, fmt.Errorf("job %s of trial %s: %w", rec.JobId, rec.Id, err)
	}
	job := resp.Job
	rec.Metrics = job.Metrics
	switch job.State {
	case schedulerv1.JobState_JOB_STATE_SUCCEEDED:
		v, ok := job.Metrics[p.x.Metric]
		if !ok {
			rec.Message = fmt.Sprintf("job %s reported no %s", job.Id, p.x.Metric)
			return &search.Event{Kind: search.Failure, Trial: t.ID}, nil
		}
		rec.Value, rec.HasValue, rec.Epochs, rec.ModelVersion = v, true, rec.TargetEpochs, job.ModelVersion
		return &search.Event{Kind: search.Completed, Trial: t.ID, Value: v}, nil
	case schedulerv1.JobState_JOB_STATE_FAILED, schedulerv1.JobState_JOB_STATE_CANCELLED:
		rec.Message = job.Reason
		return &search.Event{Kind: search.Failure, Trial: t.ID}, nil
	case schedulerv1.JobState_JOB_STATE_RUNNING:
		loss, ok := job.Metrics["validation_loss"]
		if p.x.MedianStopping && ok && int(job.Step) > len(t.Curve) {
			return &search.Event{Kind: search.Progress, Trial: t.ID, Epoch: int(job.Step), Value: loss}, nil
		}
	}
	return nil, nil
}

// act applies one searcher action to the trial records.
func (e *Evaluator) act(p *pass, a search.Action) {
	now := timestamppb.New(e.now())
	switch a.Kind {
	case search.Start:
		p.trials[a.Trial] = &evaluatorv1.Trial{ExperimentId: p.x.Id, Id: a.Trial, Params: a.Params,
			State: evaluatorv1.TrialState_TRIAL_STATE_PENDING, TargetEpochs: int32(a.Epochs), Seq: int32(a.Seq), CreateTime: now}
	case search.Continue:
		if rec := p.trials[a.Trial]; rec != nil {
			rec.State, rec.TargetEpochs, rec.Seq, rec.JobId = evaluatorv1.TrialState_TRIAL_STATE_PENDING, int32(a.Epochs), int32(a.Seq), ""
		}
	case search.Stop:
		if rec := p.trials[a.Trial]; rec != nil && rec.JobId != "" {
			p.cancels = append(p.cancels, rec.JobId)
			rec.Message = "stopped early: worse than the median of the other trials"
		}
	case search.Finish:
		if live(p.x.State) {
			p.x.State, p.x.CompleteTime, p.finished = evaluatorv1.ExperimentState_EXPERIMENT_STATE_SUCCEEDED, now, true
		}
	}
}

// cancelAll stops the running trials of a cancelled experiment.
func (e *Evaluator) cancelAll(p *pass) {
	for _, t := range p.st.Trials {
		if t.Status != search.Running {
			continue
		}
		t.Status = search.Stopped
		p.dirty = true
		if rec := p.trials[t.ID]; rec != nil {
			rec.State = evaluatorv1.TrialState_TRIAL_STATE_CANCELLED
			if rec.JobId != "" {
				p.cancels = append(p.cancels, rec.JobId)
			}
		}
	}
}

// afterCommit cancels stopped jobs, announces the end, and sends the best
// version through the promotion policy when asked.
func (e *Evaluator) afterCommit(ctx context.Context, p *pass) {
	if sc, err := e.scheduler(); err == nil {
		for _, id := range p.cancels {
			if _, err := sc.CancelJob(ctx, &schedulerv1.CancelJobRequest{Id: id, Reason: "stopped by experiment " + p.x.Id}); err != nil {
				e.log.Warn("cancel trial job", "job", id, "err", err)
			}
		}
	}
	if !p.finished {
		return
	}
	e.publish(events.KindExperiment, p.x.Id, "succeeded", p.x)
	best := p.trials[p.x.BestTrialId]
	if !p.x.PromoteBest || best == nil || best.ModelVersion == 0 {
		return
	}
	pol, err := e.GetEvaluationPolicy(ctx, p.x.Model)
	if err != nil && !errors.Is(err, apierr.ErrNotFound) {
		e.log.Warn("promote best trial: read the policy", "experiment", p.x.Id, "model", p.x.Model, "err", err)
		return
	}
	pr, note := bestPromotion(p.x, pol.GetPromotion())
	if _, err := e.Decide(ctx, p.x.Model, best.ModelVersion, pr, "exp-"+p.x.Id, "experiment "+p.x.Id, note...); err != nil {
		e.log.Warn("promote best trial", "experiment", p.x.Id, "err", err)
	}
}

// DefaultPromoteAlias is the alias an experiment's promote_best moves
// when its model has no promotion policy.
const DefaultPromoteAlias = "production"

// bestPromotion is the promotion an experiment's promote_best applies:
// the model's policy, or, when the model has none, the experiment's own
// metric and mode with DefaultPromoteAlias and no least gain; the note
// says so in the decision's reasons.
func bestPromotion(x *evaluatorv1.Experiment, pr *evaluatorv1.PromotionPolicy) (*evaluatorv1.PromotionPolicy, []string) {
	if pr != nil {
		return pr, nil
	}
	dir := evaluatorv1.Direction_DIRECTION_MAXIMIZE
	if x.Mode == "min" {
		dir = evaluatorv1.Direction_DIRECTION_MINIMIZE
	}
	return &evaluatorv1.PromotionPolicy{TargetAlias: DefaultPromoteAlias, PrimaryMetric: x.Metric, Direction: dir, Enabled: true},
		[]string{fmt.Sprintf("model %q has no promotion policy: promote_best decides by the experiment's metric %s (%s) for alias %q",
			x.Model, x.Metric, x.Mode, DefaultPromoteAlias)}
}

package evaluator

import (
	"context"
	"fmt"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	evaluatorv1 "github.com/bmaas/bmaas/api/bmaas/evaluator/v1"
	schedulerv1 "github.com/bmaas/bmaas/api/bmaas/scheduler/v1"
	"github.com/bmaas/bmaas/services/evaluator/search"
)

// Labels of trial jobs.
const (
	labelExperiment = "bmaas-experiment"
	labelTrial      = "bmaas-trial"
	labelSeq        = "bmaas-seq"
)

// submit starts the trial's next job, or adopts the one a previous
// leader submitted for the same (trial, seq) before it could record it.
func (e *Evaluator) submit(ctx context.Context, x *evaluatorv1.Experiment, rec *evaluatorv1.Trial) error {
	sc, err := e.scheduler()
	if err != nil {
		return err
	}
	labels := map[string]string{labelExperiment: x.Id, labelTrial: rec.Id, labelSeq: itoa(int64(rec.Seq))}
	sel := fmt.Sprintf("%s=%s,%s=%s,%s=%d", labelExperiment, x.Id, labelTrial, rec.Id, labelSeq, rec.Seq)
	found, err := sc.ListJobs(ctx, &schedulerv1.ListJobsRequest{LabelSelector: sel, PageSize: 1})
	if err != nil {
		return err
	}
	var job *schedulerv1.Job
	if len(found.Jobs) > 0 {
		job = found.Jobs[0]
	} else {
		resp, err := sc.SubmitJob(ctx, &schedulerv1.SubmitJobRequest{Spec: trialSpec(x, rec, labels)})
		if err != nil {
			return err
		}
		job = resp.Job
	}
	rec.JobId, rec.JobIds = job.Id, append(rec.JobIds, job.Id)
	rec.State, rec.UpdateTime = evaluatorv1.TrialState_TRIAL_STATE_RUNNING, timestamppb.New(e.now())
	return nil
}

// trialSpec is the job of the trial's next sequence number. A builtin
// job that continues a trial (seq > 1) starts from the checkpoint of the
// trial's previous job, so it trains only the epochs it adds.
func trialSpec(x *evaluatorv1.Experiment, rec *evaluatorv1.Trial, labels map[string]string) *schedulerv1.JobSpec {
	tpl := x.Template
	params := trialParams(x, rec.Params, int(rec.TargetEpochs))
	spec := &schedulerv1.JobSpec{Model: x.Model, Labels: labels, CheckpointInterval: 1, MaxRestarts: 1, Project: projectOfExperiment(x)}
	if p := tpl.GetProcess(); p != nil {
		rt := proto.CloneOf(p)
		rt.Hyperparameters = params
		spec.Runtime = &schedulerv1.JobSpec_Process{Process: rt}
		return spec
	}
	rt := &schedulerv1.BuiltinRuntime{Algorithm: tpl.Algorithm, Dataset: tpl.Dataset, DatasetVersion: tpl.DatasetVersion,
		TargetColumn: tpl.TargetColumn, TestFraction: tpl.TestFraction, ValidationFraction: tpl.ValidationFraction,
		Seed: tpl.Seed, Hyperparameters: params}
	if n := len(rec.JobIds); rec.Seq > 1 && n > 0 {
		rt.ResumeFromJob = rec.JobIds[n-1]
	}
	spec.Runtime = &schedulerv1.JobSpec_Builtin{Builtin: rt}
	return spec
}

// trialStates maps the searcher's statuses to the API's.
var trialStates = map[string]evaluatorv1.TrialState{
	search.Paused:  evaluatorv1.TrialState_TRIAL_STATE_PAUSED,
	search.Done:    evaluatorv1.TrialState_TRIAL_STATE_SUCCEEDED,
	search.Stopped: evaluatorv1.TrialState_TRIAL_STATE_STOPPED,
	search.Failed:  evaluatorv1.TrialState_TRIAL_STATE_FAILED,
}

// summarize copies the searcher's view into the trial records and the
// experiment's counters and best trial.
func (e *Evaluator) summarize(p *pass) {
	x := p.x
	x.TrialsCreated, x.TrialsCompleted, x.EpochsUsed = int32(len(p.st.Trials)), 0, 0
	for _, t := range p.st.Trials {
		rec := p.trials[t.ID]
		if rec == nil {
			continue
		}
		if s, ok := trialStates[t.Status]; ok && rec.State != evaluatorv1.TrialState_TRIAL_STATE_CANCELLED {
			rec.State = s
		}
		rec.Rung = int32(t.Rung)
		if t.Status == search.Paused && !live(x.State) && rec.State == evaluatorv1.TrialState_TRIAL_STATE_PAUSED {
			// The search ended without promoting it: it is stopped where it got.
			rec.State = evaluatorv1.TrialState_TRIAL_STATE_STOPPED
			if rec.Message == "" {
				why := "not among the best of its rung"
				if x.State != evaluatorv1.ExperimentState_EXPERIMENT_STATE_SUCCEEDED {
					why = "the experiment ended"
				}
				rec.Message = fmt.Sprintf("stopped by %s at rung %d (%d epochs): %s", x.Searcher, t.Rung, rec.Epochs, why)
			}
		}
		rec.UpdateTime = timestamppb.New(e.now())
		if t.Status != search.Running {
			x.TrialsCompleted++
		}
		x.EpochsUsed += int64(rec.Epochs)
	}
	if b := p.st.Best(); b != nil && p.trials[b.ID] != nil {
		x.BestTrialId, x.BestValue = b.ID, p.trials[b.ID].Value
	}
	x.UpdateTime = timestamppb.New(e.now())
}

//go:build integration

package tests

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	evaluatorv1 "github.com/bmaas/bmaas/api/bmaas/evaluator/v1"
	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
	schedulerv1 "github.com/bmaas/bmaas/api/bmaas/scheduler/v1"
	"github.com/bmaas/bmaas/pkg/election"
	"github.com/bmaas/bmaas/tests/harness"
)

// TestEvaluatorLeaderKill runs two evaluator processes beside registry,
// scheduler and agent processes, SIGKILLs the evaluator leader in the
// middle of an ASHA experiment, and checks that the standby finishes it
// with exactly one job per (trial, sequence number): none lost, none run
// twice, and every continuation resumed from its trial's previous job.
func TestEvaluatorLeaderKill(t *testing.T) {
	t.Parallel()
	pc := startProcessCluster(t, 1, []string{"e1"})
	ctx := t.Context()
	evals := make([]*harness.Process, 2)
	for i := range evals {
		evals[i] = harness.StartProcess(t, pc.args("--target=evaluator", "--data-dir", t.TempDir(), "--evaluator.leader-ttl", "2s")...)
	}
	rc := registryv1.NewRegistryServiceClient(dial(t, pc.registry.GRPC))
	sc := schedulerv1.NewSchedulerServiceClient(dial(t, pc.schedulers[0].GRPC))
	uploadDatasetFile(t, rc, "iris", "iris.csv")
	_, err := rc.CreateModel(ctx, &registryv1.CreateModelRequest{Model: &registryv1.Model{Name: "iris"}})
	require.NoError(t, err)
	waitNodes(t, sc, 1)

	// The leader is the evaluator whose gRPC address won the election.
	var leader, standby *harness.Process
	require.Eventually(t, func() bool {
		id, _, err := election.Leader(ctx, pc.cli, "evaluator")
		for i, p := range evals {
			if err == nil && p.GRPC == id {
				leader, standby = p, evals[1-i]
			}
		}
		return leader != nil
	}, 30*time.Second, 20*time.Millisecond)
	ec := evaluatorv1.NewEvaluatorServiceClient(dial(t, standby.GRPC))

	x := &evaluatorv1.Experiment{Model: "iris", Searcher: "asha", Metric: "test_accuracy", MaxTrials: 9, Parallelism: 3,
		MinEpochs: 1, MaxEpochs: 9, ReductionFactor: 3, Seed: 11,
		Params: []*evaluatorv1.SearchParam{{Name: "lr", Type: evaluatorv1.ParamType_PARAM_TYPE_LOG_UNIFORM, Low: 1e-3, High: 0.1}},
		Template: &evaluatorv1.TrialTemplate{Algorithm: "mlp", Dataset: "iris", Seed: 7,
			Hyperparameters: map[string]string{"hidden": "32", "patience": "0", "schedule": "constant"}}}
	resp, err := ec.CreateExperiment(ctx, &evaluatorv1.CreateExperimentRequest{Experiment: x})
	require.NoError(t, err)
	sel := &schedulerv1.ListJobsRequest{LabelSelector: "bmaas-experiment=" + resp.Experiment.Id}
	require.Eventually(t, func() bool {
		jobs, err := sc.ListJobs(ctx, sel)
		return err == nil && len(jobs.Jobs) >= 4
	}, 60*time.Second, 5*time.Millisecond)
	before, err := ec.GetExperiment(ctx, &evaluatorv1.GetExperimentRequest{Id: resp.Experiment.Id})
	require.NoError(t, err)
	require.Equal(t, evaluatorv1.ExperimentState_EXPERIMENT_STATE_RUNNING, before.Experiment.State, "killed mid-experiment")
	leader.Kill()
	killed := time.Now()

	done := waitExperiment(t, func() (*evaluatorv1.Experiment, error) {
		r, err := ec.GetExperiment(ctx, &evaluatorv1.GetExperimentRequest{Id: resp.Experiment.Id})
		return r.GetExperiment(), err
	})
	t.Logf("experiment finished %s after the kill", time.Since(killed).Round(time.Millisecond))
	require.EqualValues(t, 9, done.TrialsCreated)
	id, _, err := election.Leader(ctx, pc.cli, "evaluator")
	require.NoError(t, err)
	require.Equal(t, standby.GRPC, id, "the standby leads")

	trials, err := ec.ListTrials(ctx, &evaluatorv1.ListTrialsRequest{ExperimentId: done.Id})
	require.NoError(t, err)
	jobs, err := sc.ListJobs(ctx, sel)
	require.NoError(t, err)
	bySeq := map[string]*schedulerv1.Job{}
	for _, j := range jobs.Jobs {
		key := j.Spec.Labels["bmaas-trial"] + "/" + j.Spec.Labels["bmaas-seq"]
		require.Nil(t, bySeq[key], "trial/seq %s ran twice", key)
		bySeq[key] = j
		require.Equal(t, schedulerv1.JobState_JOB_STATE_SUCCEEDED, j.State, "job %s (%s): %s", j.Id, key, j.Reason)
	}
	seqs := 0
	for _, tr := range trials.Trials {
		require.NotEqual(t, evaluatorv1.TrialState_TRIAL_STATE_FAILED, tr.State, tr.Message)
		for i, id := range tr.JobIds {
			j := bySeq[fmt.Sprintf("%s/%d", tr.Id, i+1)]
			require.NotNil(t, j, "trial %s seq %d has no job", tr.Id, i+1)
			require.Equal(t, id, j.Id, "trial %s seq %d", tr.Id, i+1)
			if i > 0 {
				require.Equal(t, tr.JobIds[i-1], j.Spec.GetBuiltin().GetResumeFromJob())
			}
			seqs++
		}
	}
	require.Len(t, jobs.Jobs, seqs, "every job belongs to a trial's sequence")
	require.Greater(t, seqs, 9, "ASHA continued some trials")
}

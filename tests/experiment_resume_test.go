//go:build integration

package tests

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	evaluatorv1 "github.com/bmaas/bmaas/api/bmaas/evaluator/v1"
	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
	schedulerv1 "github.com/bmaas/bmaas/api/bmaas/scheduler/v1"
	"github.com/bmaas/bmaas/pkg/events"
	"github.com/bmaas/bmaas/tests/harness"
)

// trainSteps returns the steps of a job's training epochs, in the order
// its metrics stream recorded them.
func trainSteps(t *testing.T, c *harness.Cluster, job string) []int {
	t.Helper()
	nc := c.NATSConn(t)
	bus, err := events.NewBus(t.Context(), nc, events.Config{}, nil)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	var steps []int
	err = bus.Replay(ctx, events.StreamMetrics, "bmaas.metrics."+job+".>", false, func(e events.Event) error {
		var line struct {
			Step  int    `json:"step"`
			Split string `json:"split"`
			Final bool   `json:"final"`
		}
		if err := json.Unmarshal(e.Data, &line); err != nil {
			return err
		}
		if line.Split == "train" && !line.Final {
			steps = append(steps, line.Step)
		}
		return nil
	})
	if errors.Is(err, context.DeadlineExceeded) {
		err = nil
	}
	require.NoError(t, err)
	return steps
}

// ASHA continues a promoted trial from its previous job's checkpoint: the
// continuation trains only the epochs it adds (steps 2 and 3 after a
// first rung of 1 epoch), and epochs_used counts each epoch once.
func TestASHAResumesPromotedTrial(t *testing.T) {
	t.Parallel()
	c := harness.Start(t)
	ctx := t.Context()
	ec := evaluatorv1.NewEvaluatorServiceClient(c.Conn)
	sc := schedulerv1.NewSchedulerServiceClient(c.Conn)
	setupIris(t, c)

	x := &evaluatorv1.Experiment{Model: "iris", Searcher: "asha", Metric: "test_accuracy", MaxTrials: 3, Parallelism: 3,
		MinEpochs: 1, MaxEpochs: 3, ReductionFactor: 3, Seed: 5,
		Params: []*evaluatorv1.SearchParam{{Name: "lr", Type: evaluatorv1.ParamType_PARAM_TYPE_LOG_UNIFORM, Low: 1e-3, High: 0.1}},
		Template: &evaluatorv1.TrialTemplate{Algorithm: "mlp", Dataset: "iris", Seed: 7,
			Hyperparameters: map[string]string{"hidden": "8", "patience": "0", "schedule": "constant"}}}
	resp, err := ec.CreateExperiment(ctx, &evaluatorv1.CreateExperimentRequest{Experiment: x})
	require.NoError(t, err)
	done := waitExperiment(t, func() (*evaluatorv1.Experiment, error) {
		r, err := ec.GetExperiment(ctx, &evaluatorv1.GetExperimentRequest{Id: resp.Experiment.Id})
		return r.GetExperiment(), err
	})
	trials, err := ec.ListTrials(ctx, &evaluatorv1.ListTrialsRequest{ExperimentId: done.Id})
	require.NoError(t, err)
	var promoted *evaluatorv1.Trial
	for _, tr := range trials.Trials {
		if len(tr.JobIds) > 1 {
			require.Nil(t, promoted, "one trial of three reaches the second rung")
			promoted = tr
		}
	}
	require.NotNil(t, promoted)
	require.Len(t, promoted.JobIds, 2)
	require.EqualValues(t, 3, promoted.Epochs)
	require.EqualValues(t, 1+1+3, done.EpochsUsed, "two trials of 1 epoch and one of 3, each epoch counted once")

	first, second := promoted.JobIds[0], promoted.JobIds[1]
	j, err := sc.GetJob(ctx, &schedulerv1.GetJobRequest{Id: second})
	require.NoError(t, err)
	require.Equal(t, first, j.Job.Spec.GetBuiltin().GetResumeFromJob())
	require.Equal(t, schedulerv1.JobState_JOB_STATE_SUCCEEDED, j.Job.State)
	require.EqualValues(t, 3, j.Job.Step)

	require.Equal(t, []int{1}, trainSteps(t, c, first))
	require.Equal(t, []int{2, 3}, trainSteps(t, c, second), "the continuation starts after the first job's last epoch")

	v, err := c.Registry.GetModelVersion(ctx, &registryv1.GetModelVersionRequest{Model: "iris", Version: fmt.Sprint(promoted.ModelVersion)})
	require.NoError(t, err)
	require.Equal(t, second, v.Version.Lineage.GetJobId())
}

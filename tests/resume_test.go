//go:build integration

package tests

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
	schedulerv1 "github.com/bmaas/bmaas/api/bmaas/scheduler/v1"
	"github.com/bmaas/bmaas/pkg/events"
)

// TestAgentKillResumesFromCheckpoint kills (SIGKILL) the agent running a
// 30-epoch MLP job: the job finishes on the other agent, resumed from its
// checkpoint, having run at most 30 epochs plus one checkpoint interval.
func TestAgentKillResumesFromCheckpoint(t *testing.T) {
	t.Parallel()
	pc := startProcessCluster(t, 1, []string{"k1", "k2"})
	ctx := t.Context()
	rc := registryv1.NewRegistryServiceClient(dial(t, pc.registry.GRPC))
	sc := schedulerv1.NewSchedulerServiceClient(dial(t, pc.schedulers[0].GRPC))
	uploadDatasetFile(t, rc, "digits", "digits.csv")
	_, err := rc.CreateModel(ctx, &registryv1.CreateModelRequest{Model: &registryv1.Model{Name: "digits-mlp"}})
	require.NoError(t, err)
	waitNodes(t, sc, 2)

	const epochs, interval = 30, 2
	spec := builtinSpec("digits-mlp", "digits", "mlp", map[string]string{"epochs": "30", "hidden": "512,512", "batch_size": "8", "patience": "0"})
	spec.CheckpointInterval = interval
	spec.MaxRestarts = 0 // losing a node is not a restart
	sub, err := sc.SubmitJob(ctx, &schedulerv1.SubmitJobRequest{Spec: spec})
	require.NoError(t, err)

	var victim string
	var atKill *schedulerv1.Job
	require.Eventually(t, func() bool {
		j, err := sc.GetJob(ctx, &schedulerv1.GetJobRequest{Id: sub.Job.Id})
		if err != nil || j.Job.CheckpointStep < 6 || len(j.Job.Nodes) == 0 {
			return false
		}
		victim, atKill = j.Job.Nodes[0], j.Job
		return true
	}, 2*time.Minute, 10*time.Millisecond)
	pc.agents[victim].Kill()
	require.Equal(t, schedulerv1.JobState_JOB_STATE_RUNNING, atKill.State, "killed mid-run (step %d)", atKill.Step)
	t.Logf("killed %s at step %d, checkpoint step %d", victim, atKill.Step, atKill.CheckpointStep)

	job := waitJob(t, sc, sub.Job.Id, 3*time.Minute)
	require.Equal(t, schedulerv1.JobState_JOB_STATE_SUCCEEDED, job.State, "reason: %s", job.Reason)
	require.NotContains(t, job.Nodes, victim, "finished on the other agent")
	require.Greater(t, job.Attempt, int32(1), "a second attempt ran")

	// Count the epochs every attempt trained, from the metrics stream.
	nc, err := nats.Connect(pc.nats.URL)
	require.NoError(t, err)
	defer nc.Close()
	bus, err := events.NewBus(ctx, nc, events.Config{}, nil)
	require.NoError(t, err)
	rctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	trained := 0
	err = bus.Replay(rctx, events.StreamMetrics, "bmaas.metrics."+sub.Job.Id+".>", false, func(e events.Event) error {
		var line map[string]any
		if err := json.Unmarshal(e.Data, &line); err != nil {
			return err
		}
		// Epoch lines only: the final metrics line has split "train" too.
		if line["split"] == "train" && line["final"] != true {
			trained++
		}
		return nil
	})
	if errors.Is(err, context.DeadlineExceeded) {
		err = nil
	}
	require.NoError(t, err)
	t.Logf("epochs trained over both attempts: %d (checkpointed step when killed >= 6)", trained)
	require.GreaterOrEqual(t, trained, epochs)
	require.LessOrEqual(t, trained, epochs+interval)
}

//go:build integration

package tests

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protojson"

	evaluatorv1 "github.com/bmaas/bmaas/api/bmaas/evaluator/v1"
	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
	schedulerv1 "github.com/bmaas/bmaas/api/bmaas/scheduler/v1"
	"github.com/bmaas/bmaas/internal/app"
	"github.com/bmaas/bmaas/internal/testenv"
	"github.com/bmaas/bmaas/pkg/events"
	"github.com/bmaas/bmaas/services/evaluator"
	"github.com/bmaas/bmaas/tests/harness"
)

// A version whose version.ready event never reaches the evaluator is
// evaluated, and promoted by its policy, through the leader's sweep; the
// event arriving afterwards, and further sweeps, redo nothing.
func TestAutoEvaluationSweepCatchesALostEvent(t *testing.T) {
	t.Parallel()
	cfg := harness.DefaultConfig(t)
	cfg.Targets = []string{app.TargetRegistry, app.TargetScheduler, app.TargetTrainerAgent}
	c := harness.StartConfig(t, cfg)
	ctx := t.Context()
	sc := schedulerv1.NewSchedulerServiceClient(c.Conn)
	setupIris(t, c)

	// The evaluator's bus is a NATS of its own: its version consumer runs,
	// but the registry's version.ready events never reach it.
	bus, err := events.NewBus(ctx, testenv.NATSConn(t), events.Config{}, nil)
	require.NoError(t, err)
	ecfg := evaluator.DefaultConfig()
	ecfg.LeaderTTL = time.Second
	ecfg.AutoSweep = 100 * time.Millisecond
	svc, err := evaluator.New(ecfg, evaluator.Deps{Etcd: c.EtcdClient(t), Registry: c.Registry, Scheduler: sc, Bus: bus, ID: "sweeper"})
	require.NoError(t, err)
	rctx, stop := context.WithCancel(ctx)
	defer stop()
	go func() { _ = svc.Run(rctx) }()
	ev := svc.Evaluator()
	_, err = ev.SetEvaluationPolicy(ctx, &evaluatorv1.EvaluationPolicy{Model: "iris", Datasets: []*evaluatorv1.DatasetRef{{Dataset: "iris"}},
		Promotion: &evaluatorv1.PromotionPolicy{TargetAlias: "production", PrimaryMetric: "test_accuracy",
			Direction: evaluatorv1.Direction_DIRECTION_MAXIMIZE, Enabled: true}}, "")
	require.NoError(t, err)

	job := trainJob(t, sc, "iris", "iris", "logistic", map[string]string{"C": protojsonFloat(1)})
	listDecisions := func() []*evaluatorv1.Decision {
		resp, err := ev.ListDecisions(ctx, &evaluatorv1.ListDecisionsRequest{Model: "iris"})
		require.NoError(t, err)
		return resp.Decisions
	}
	listEvaluations := func() []*evaluatorv1.Evaluation {
		resp, err := ev.ListEvaluations(ctx, &evaluatorv1.ListEvaluationsRequest{Model: "iris", Version: job.ModelVersion})
		require.NoError(t, err)
		return resp.Evaluations
	}
	require.Eventually(t, func() bool { return len(listDecisions()) == 1 }, 30*time.Second, 20*time.Millisecond)
	d := listDecisions()[0]
	require.Equal(t, job.ModelVersion, d.Version)
	require.True(t, d.Promoted, "%v", d.Reasons)
	evs := listEvaluations()
	require.Len(t, evs, 2, "the job's test split and the policy's dataset")
	for _, e := range evs {
		require.Equal(t, evaluatorv1.EvaluationState_EVALUATION_STATE_SUCCEEDED, e.State, e.Message)
		require.Equal(t, evaluator.TriggerAuto, e.Trigger)
	}
	m, err := c.Registry.GetModel(ctx, &registryv1.GetModelRequest{Name: "iris"})
	require.NoError(t, err)
	require.Equal(t, job.ModelVersion, m.Model.Aliases["production"])

	// The lost event arrives late: the consumer handles it and does nothing.
	v, err := c.Registry.GetModelVersion(ctx, &registryv1.GetModelVersionRequest{Model: "iris", Version: itoa64(job.ModelVersion)})
	require.NoError(t, err)
	data, err := protojson.Marshal(v.Version)
	require.NoError(t, err)
	require.NoError(t, bus.Publish(ctx, events.Event{Kind: events.KindModel, Key: "iris", Type: "version.ready", Data: data}))
	require.Eventually(t, func() bool {
		cons, err := bus.JetStream().Consumer(ctx, events.StreamEvents, "evaluator-versions")
		if err != nil {
			return false
		}
		info, err := cons.Info(ctx)
		return err == nil && info.Delivered.Stream > 0 && info.NumPending == 0 && info.NumAckPending == 0
	}, 10*time.Second, 20*time.Millisecond)
	n, err := ev.SweepAuto(ctx)
	require.NoError(t, err)
	require.Zero(t, n, "a swept version is not evaluated again")
	require.Len(t, listEvaluations(), 2)
	require.Len(t, listDecisions(), 1)
}

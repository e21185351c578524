//go:build integration

package tests

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	evaluatorv1 "github.com/bmaas/bmaas/api/bmaas/evaluator/v1"
	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
	schedulerv1 "github.com/bmaas/bmaas/api/bmaas/scheduler/v1"
	"github.com/bmaas/bmaas/pkg/events"
	"github.com/bmaas/bmaas/tests/harness"
)

// evaluationsOf lists the evaluations of one version.
func evaluationsOf(t *testing.T, ec evaluatorv1.EvaluatorServiceClient, model string, version int64) []*evaluatorv1.Evaluation {
	t.Helper()
	resp, err := ec.ListEvaluations(t.Context(), &evaluatorv1.ListEvaluationsRequest{Model: model, Version: version})
	require.NoError(t, err)
	return resp.Evaluations
}

// waitEvaluations polls until a version has n evaluations and returns when
// they appeared.
func waitEvaluations(t *testing.T, ec evaluatorv1.EvaluatorServiceClient, model string, version int64, n int) time.Time {
	t.Helper()
	require.Eventually(t, func() bool { return len(evaluationsOf(t, ec, model, version)) >= n }, 10*time.Second, 20*time.Millisecond)
	return time.Now()
}

func decisions(t *testing.T, ec evaluatorv1.EvaluatorServiceClient, model string) []*evaluatorv1.Decision {
	t.Helper()
	resp, err := ec.ListDecisions(t.Context(), &evaluatorv1.ListDecisionsRequest{Model: model})
	require.NoError(t, err)
	return resp.Decisions
}

func TestAutoEvaluationPromotionAndRedelivery(t *testing.T) {
	t.Parallel()
	c := harness.Start(t)
	ctx := t.Context()
	sc := schedulerv1.NewSchedulerServiceClient(c.Conn)
	ec := evaluatorv1.NewEvaluatorServiceClient(c.Conn)
	uploadCSV(t, c.Registry, "iris", readExampleCSV(t, "iris.csv"))
	_, err := c.Registry.CreateModel(ctx, &registryv1.CreateModelRequest{Model: &registryv1.Model{Name: "iris"}})
	require.NoError(t, err)
	_, err = ec.SetEvaluationPolicy(ctx, &evaluatorv1.SetEvaluationPolicyRequest{Policy: &evaluatorv1.EvaluationPolicy{
		Model: "iris", Datasets: []*evaluatorv1.DatasetRef{{Dataset: "iris"}},
		Promotion: &evaluatorv1.PromotionPolicy{TargetAlias: "production", PrimaryMetric: "test_log_loss",
			Direction: evaluatorv1.Direction_DIRECTION_MINIMIZE, MinImprovement: 0.05, Enabled: true,
			Guards: []*evaluatorv1.Guard{{Metric: "eval_iris_accuracy", Min: proto.Float64(0.3)}}}}})
	require.NoError(t, err)

	step := func(cval float64) (*registryv1.ModelVersion, *evaluatorv1.Decision) {
		job := trainJob(t, sc, "iris", "iris", "logistic", map[string]string{"C": protojsonFloat(cval)})
		ready := time.Now()
		at := waitEvaluations(t, ec, "iris", job.ModelVersion, 2) // test split + the policy's dataset
		require.Less(t, at.Sub(ready), 5*time.Second)
		var d *evaluatorv1.Decision
		require.Eventually(t, func() bool {
			for _, x := range decisions(t, ec, "iris") {
				if x.Version == job.ModelVersion {
					d = x
				}
			}
			return d != nil
		}, 10*time.Second, 20*time.Millisecond)
		v, err := c.Registry.GetModelVersion(ctx, &registryv1.GetModelVersionRequest{Model: "iris", Version: itoa64(job.ModelVersion)})
		require.NoError(t, err)
		return v.Version, d
	}
	alias := func() int64 {
		m, err := c.Registry.GetModel(ctx, &registryv1.GetModelRequest{Name: "iris"})
		require.NoError(t, err)
		return m.Model.Aliases["production"]
	}

	v1, d1 := step(0.1)
	require.True(t, d1.Promoted, "%v", d1.Reasons)
	require.Contains(t, v1.Metrics, "eval_iris_accuracy")
	require.Equal(t, v1.Version, alias())

	v2, d2 := step(0.001) // heavily regularised: a worse log loss
	require.False(t, d2.Promoted)
	require.Contains(t, d2.Reasons[0], "not better enough")
	require.Equal(t, v1.Version, alias())
	require.Equal(t, v1.Version, d2.IncumbentVersion)

	v3, d3 := step(10)
	require.True(t, d3.Promoted, "%v", d3.Reasons)
	require.Contains(t, d3.Reasons[0], "better")
	require.Equal(t, v3.Version, alias())
	require.Len(t, decisions(t, ec, "iris"), 3)

	// Redeliver v2's READY event: nothing is evaluated or decided again.
	nc := c.NATSConn(t)
	bus, err := events.NewBus(ctx, nc, events.Config{}, nil)
	require.NoError(t, err)
	data, err := protojson.Marshal(v2)
	require.NoError(t, err)
	require.NoError(t, bus.Publish(ctx, events.Event{Kind: events.KindModel, Key: "iris", Type: "version.ready", Data: data}))
	cons, err := bus.JetStream().Consumer(ctx, events.StreamEvents, "evaluator-versions")
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		info, err := cons.Info(context.Background())
		return err == nil && info.NumPending == 0 && info.NumAckPending == 0
	}, 10*time.Second, 20*time.Millisecond)
	require.Len(t, evaluationsOf(t, ec, "iris", v2.Version), 2)
	require.Len(t, decisions(t, ec, "iris"), 3)
	require.Equal(t, v3.Version, alias())
}

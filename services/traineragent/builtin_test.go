//go:build integration

package traineragent_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	agentv1 "github.com/bmaas/bmaas/api/bmaas/agent/v1"
	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
	schedulerv1 "github.com/bmaas/bmaas/api/bmaas/scheduler/v1"
	"github.com/bmaas/bmaas/internal/testenv"
	"github.com/bmaas/bmaas/pkg/events"
	"github.com/bmaas/bmaas/pkg/ml/artifact"
)

func TestBuiltinLogisticRegistersVersion(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	dv := e.dataset("breast_cancer")
	e.model("bc")
	a := e.agent("n1", nil)
	job := &schedulerv1.Assignment{JobId: "job1", Node: "n1", Term: 1, Spec: &schedulerv1.JobSpec{Model: "bc",
		Runtime: &schedulerv1.JobSpec_Builtin{Builtin: &schedulerv1.BuiltinRuntime{Algorithm: "logistic", Dataset: "breast-cancer",
			TargetColumn: "target", Seed: 7, Hyperparameters: map[string]string{"C": "1"}}}}}
	e.assign(job)
	st := e.waitTask("job1", 0, schedulerv1.TaskState_TASK_STATE_SUCCEEDED, 20*time.Second)
	require.Equal(t, int64(1), st.ModelVersion)
	require.Equal(t, "n1", st.Node)
	require.Greater(t, st.Metrics["test_accuracy"], 0.9)
	require.NotNil(t, st.StartTime)
	require.NotNil(t, st.EndTime)

	v := e.version("bc", 1)
	require.Equal(t, registryv1.VersionStatus_VERSION_STATUS_READY, v.Status)
	require.Equal(t, registryv1.ModelFormat_MODEL_FORMAT_NATIVE, v.Format)
	require.Greater(t, v.Metrics["test_accuracy"], 0.9)
	require.Equal(t, "1", v.Hyperparameters["C"])
	require.Equal(t, &registryv1.Lineage{JobId: "job1", Dataset: "breast-cancer", DatasetVersion: dv}, v.Lineage)
	require.NotEmpty(t, v.Signature.GetInputs())
	require.NotEmpty(t, v.TrainingStats.GetColumns())
	m, err := artifact.Unmarshal(e.download("bc", 1))
	require.NoError(t, err)
	require.Equal(t, "logistic", m.Proto.Algorithm)

	// The agent answers its node and tasks.
	resp, err := (&agentHandler{a}).status(t)
	require.NoError(t, err)
	require.Equal(t, "n1", resp.Node)
	require.Equal(t, []*agentv1.TaskStatus{{JobId: "job1", Rank: 0, State: "SUCCEEDED"}}, resp.Tasks)
}

func TestBuiltinBadInputFails(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.dataset("iris")
	e.model("iris")
	e.agent("n1", nil)
	for job, rt := range map[string]*schedulerv1.BuiltinRuntime{
		"nodata": {Algorithm: "logistic", Dataset: "missing", TargetColumn: "target"},
		"noalgo": {Algorithm: "forest", Dataset: "iris", TargetColumn: "target"},
		"badhp":  {Algorithm: "mlp", Dataset: "iris", TargetColumn: "target", Hyperparameters: map[string]string{"lr": "fast"}},
	} {
		e.assign(&schedulerv1.Assignment{JobId: job, Node: "n1", Term: 1, Spec: &schedulerv1.JobSpec{Model: "iris",
			Runtime: &schedulerv1.JobSpec_Builtin{Builtin: rt}}})
	}
	for job, want := range map[string]string{"nodata": "download dataset missing", "noalgo": "forest", "badhp": "lr"} {
		st := e.waitTask(job, 0, schedulerv1.TaskState_TASK_STATE_FAILED, 20*time.Second)
		require.Contains(t, st.Message, want, job)
	}
}

// TestBuiltinResumesFromCheckpoint stops an MLP job mid-run (its
// assignment is removed, as when it is preempted or its node is lost) and
// runs the next attempt on another node: it starts from the uploaded
// checkpoint's step and trains no more epochs in total than one run plus
// one checkpoint interval.
func TestBuiltinResumesFromCheckpoint(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.dataset("breast_cancer")
	e.model("bc")
	const epochs = 30
	spec := &schedulerv1.JobSpec{Model: "bc", CheckpointInterval: 2, Runtime: &schedulerv1.JobSpec_Builtin{Builtin: &schedulerv1.BuiltinRuntime{
		Algorithm: "mlp", Dataset: "breast-cancer", TargetColumn: "target", Seed: 3,
		Hyperparameters: map[string]string{"hidden": "512,512", "epochs": "30", "patience": "0", "batch_size": "8"}}}}
	steps := e.metricSteps(t.Context(), "jobmlp")
	n1 := e.agent("n1", nil)
	e.agent("n2", nil)
	e.assign(&schedulerv1.Assignment{JobId: "jobmlp", Node: "n1", Term: 1, Spec: spec})
	require.Eventually(t, func() bool {
		st := e.task("jobmlp", 0)
		return st != nil && st.CheckpointStep >= 4
	}, 20*time.Second, 10*time.Millisecond)
	// n1 goes away: its worker stops and saves a last checkpoint.
	n1.stop()
	<-n1.done
	resp, err := e.reg.GetCheckpoint(t.Context(), &registryv1.GetCheckpointRequest{JobId: "jobmlp"})
	require.NoError(t, err)
	cp := resp.Checkpoint
	require.Less(t, cp.Step, int64(epochs), "the first run must be stopped mid-way")

	e.assign(&schedulerv1.Assignment{JobId: "jobmlp", Node: "n2", Term: 1, Attempt: 1, Spec: spec})
	st := e.waitTask("jobmlp", 0, schedulerv1.TaskState_TASK_STATE_SUCCEEDED, 30*time.Second)
	require.Equal(t, "n2", st.Node)
	require.Equal(t, int32(1), st.Attempt)
	require.Equal(t, int64(epochs), st.Step)
	var all []step
	require.Eventually(t, func() bool {
		all = steps()
		return len(all) > 0 && all[len(all)-1] == step{attempt: 1, step: epochs}
	}, 5*time.Second, 10*time.Millisecond)
	var second []int64
	for _, s := range all {
		if s.attempt == 1 {
			second = append(second, s.step)
		}
	}
	require.Equal(t, cp.Step+1, second[0], "the second run starts after the checkpoint's step")
	require.Len(t, second, epochs-int(cp.Step))
	require.LessOrEqual(t, len(all), epochs+int(spec.CheckpointInterval))
	require.Equal(t, registryv1.VersionStatus_VERSION_STATUS_READY, e.version("bc", st.ModelVersion).Status)
}

type step struct {
	attempt int32
	step    int64
}

// metricSteps collects the train steps reported on NATS for a job.
func (e *env) metricSteps(ctx context.Context, job string) func() []step {
	cons, err := e.bus.JetStream().OrderedConsumer(ctx, events.StreamMetrics, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{"bmaas.metrics." + job + ".>"}})
	require.NoError(e.t, err)
	got := make(chan step, 1024)
	cc, err := cons.Consume(func(m jetstream.Msg) {
		var line struct {
			Step    int64  `json:"step"`
			Split   string `json:"split"`
			Final   bool   `json:"final"`
			Attempt int32  `json:"attempt"`
		}
		if json.Unmarshal(m.Data(), &line) == nil && line.Split == "train" && !line.Final {
			got <- step{attempt: line.Attempt, step: line.Step}
		}
	})
	require.NoError(e.t, err)
	e.t.Cleanup(cc.Stop)
	var steps []step
	return func() []step {
		for {
			select {
			case s := <-got:
				steps = append(steps, s)
			default:
				return steps
			}
		}
	}
}

// agentHandler calls an agent's gRPC API.
type agentHandler struct{ a *agent }

func (h *agentHandler) status(t *testing.T) (*agentv1.GetAgentStatusResponse, error) {
	conn := testenv.Serve(t, h.a.svc.Register)
	return agentv1.NewAgentServiceClient(conn).GetAgentStatus(t.Context(), &agentv1.GetAgentStatusRequest{})
}

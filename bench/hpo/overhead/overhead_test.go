// Package overhead measures the evaluator's orchestration overhead in
// `bmaas up` (the whole platform in one process): an experiment of 100
// trials, each a process job that sleeps for 1 s, run 4 at a time. The
// ideal is 100/4 × 1 s = 25 s; the figure is the wall time from creating
// the experiment to its SUCCEEDED state, divided by the ideal.
//
//	go test -run '^$' -bench . -benchtime 1x ./bench/hpo/overhead/
package overhead

import (
	"context"
	"flag"
	"fmt"
	"testing"
	"time"

	evaluatorv1 "github.com/bmaas/bmaas/api/bmaas/evaluator/v1"
	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
	schedulerv1 "github.com/bmaas/bmaas/api/bmaas/scheduler/v1"
	"github.com/bmaas/bmaas/tests/harness"
)

var (
	trials      = flag.Int("trials", 100, "trials in the experiment")
	parallelism = flag.Int("parallelism", 4, "trials run at once")
	trialTime   = flag.Duration("trial", time.Second, "how long each trial's command sleeps")
)

// script sleeps, then reports a metric and leaves an artifact, as the
// process runtime's contract says.
const script = `sleep "$SLEEP"
echo '{"step":1,"split":"validation","accuracy":0.5}' > "$BMAAS_METRICS_FILE"
echo model > "$BMAAS_OUTPUT_DIR/model.bin"`

func BenchmarkOrchestrationOverhead(b *testing.B) {
	cfg := harness.DefaultConfig(b)
	// Sleeping trials use no CPU: let the one node take the parallelism
	// whatever the machine's core count.
	cfg.TrainerAgent.CPUMillis = int64(*parallelism) * 1000
	c := harness.StartConfig(b, cfg)
	ctx := context.Background()
	if _, err := c.Registry.CreateModel(ctx, &registryv1.CreateModelRequest{Model: &registryv1.Model{Name: "sleep"}}); err != nil {
		b.Fatal(err)
	}
	ec := evaluatorv1.NewEvaluatorServiceClient(c.Conn)
	ideal := time.Duration(float64(*trials) / float64(*parallelism) * float64(*trialTime))
	for b.Loop() {
		x := &evaluatorv1.Experiment{Model: "sleep", Searcher: "random", Metric: "validation_accuracy",
			MaxTrials: int32(*trials), Parallelism: int32(*parallelism), Seed: 1,
			Params: []*evaluatorv1.SearchParam{{Name: "x", Type: evaluatorv1.ParamType_PARAM_TYPE_UNIFORM, Low: 0, High: 1}},
			Template: &evaluatorv1.TrialTemplate{Process: &schedulerv1.ProcessRuntime{Command: "/bin/sh", Args: []string{"-c", script},
				Env: map[string]string{"SLEEP": fmt.Sprintf("%g", trialTime.Seconds())}}}}
		start := time.Now()
		resp, err := ec.CreateExperiment(ctx, &evaluatorv1.CreateExperimentRequest{Experiment: x})
		if err != nil {
			b.Fatal(err)
		}
		var got *evaluatorv1.Experiment
		for {
			r, err := ec.GetExperiment(ctx, &evaluatorv1.GetExperimentRequest{Id: resp.Experiment.Id})
			if err != nil {
				b.Fatal(err)
			}
			if got = r.Experiment; got.State != evaluatorv1.ExperimentState_EXPERIMENT_STATE_RUNNING {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		wall := time.Since(start)
		if got.State != evaluatorv1.ExperimentState_EXPERIMENT_STATE_SUCCEEDED || got.TrialsCompleted != int32(*trials) {
			b.Fatalf("experiment %s: %s with %d of %d trials", got.Id, got.State, got.TrialsCompleted, *trials)
		}
		b.ReportMetric(wall.Seconds(), "wall-s")
		b.ReportMetric(ideal.Seconds(), "ideal-s")
		b.ReportMetric(wall.Seconds()/ideal.Seconds(), "x-ideal")
	}
}

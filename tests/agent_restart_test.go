//go:build integration

package tests

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
	schedulerv1 "github.com/bmaas/bmaas/api/bmaas/scheduler/v1"
	"github.com/bmaas/bmaas/tests/harness"
)

// stepScript counts to 30 from its restored checkpoint, a step every
// 200 ms, checkpointing each step.
const stepScript = `set -eu
n=0
if [ -f "$BMAAS_CHECKPOINT_DIR/state" ]; then n=$(cat "$BMAAS_CHECKPOINT_DIR/state"); echo "resumed from step $n"; fi
while [ $n -lt 30 ]; do
  n=$((n+1))
  echo "{\"step\":$n,\"split\":\"train\",\"loss\":$n}" >> "$BMAAS_METRICS_FILE"
  echo $n > "$BMAAS_CHECKPOINT_DIR/state.tmp" && mv "$BMAAS_CHECKPOINT_DIR/state.tmp" "$BMAAS_CHECKPOINT_DIR/state"
  sleep 0.2
done
echo onnx > "$BMAAS_OUTPUT_DIR/model.onnx"
`

// TestAgentRestartStartsANewAttempt kills (SIGKILL) the agent running a
// process job and starts it again on the same data directory before its
// node lease lapses (the scheduler never sees the node leave). The lost
// task is not run again under its attempt: the job runs as attempt 2 (not
// counted as a restart), the history says why, it resumes from its
// checkpoint, and the log tells the attempts apart.
func TestAgentRestartStartsANewAttempt(t *testing.T) {
	t.Parallel()
	pc := startProcessCluster(t, 1, nil)
	ctx := t.Context()
	rc := registryv1.NewRegistryServiceClient(dial(t, pc.registry.GRPC))
	sc := schedulerv1.NewSchedulerServiceClient(dial(t, pc.schedulers[0].GRPC))
	_, err := rc.CreateModel(ctx, &registryv1.CreateModelRequest{Model: &registryv1.Model{Name: "steps"}})
	require.NoError(t, err)
	agentArgs := pc.args("--target=trainer-agent", "--data-dir", t.TempDir(), "--trainer-agent.node", "r1",
		"--trainer-agent.lease-ttl", "30s", "--trainer-agent.checkpoint-interval", "200ms")
	agent := harness.StartProcess(t, agentArgs...)
	waitNodes(t, sc, 1)

	spec := &schedulerv1.JobSpec{Model: "steps", MaxRestarts: 0, Runtime: &schedulerv1.JobSpec_Process{
		Process: &schedulerv1.ProcessRuntime{Command: "/bin/sh", Args: []string{"-c", stepScript}}}}
	sub, err := sc.SubmitJob(ctx, &schedulerv1.SubmitJobRequest{Spec: spec})
	require.NoError(t, err)
	var atKill *schedulerv1.Job
	require.Eventually(t, func() bool {
		j, err := sc.GetJob(ctx, &schedulerv1.GetJobRequest{Id: sub.Job.Id})
		atKill = j.GetJob()
		return err == nil && atKill.State == schedulerv1.JobState_JOB_STATE_RUNNING && atKill.CheckpointStep >= 5
	}, time.Minute, 10*time.Millisecond)
	agent.Kill()
	t.Logf("killed the agent at step %d, checkpoint step %d", atKill.Step, atKill.CheckpointStep)
	harness.StartProcess(t, agentArgs...)

	job := waitJob(t, sc, sub.Job.Id, 2*time.Minute)
	require.Equal(t, schedulerv1.JobState_JOB_STATE_SUCCEEDED, job.State, "reason: %s", job.Reason)
	require.Equal(t, int32(2), job.Attempt, "the lost task ran again as a new attempt")
	require.Zero(t, job.Restarts, "a task lost with its agent is not a restart")
	var why []string
	for _, h := range job.History {
		why = append(why, h.Reason)
	}
	require.Contains(t, why, "requeued: rank 0 lost on r1: agent restarted: the task's process was lost")

	logs := jobLogs(t, sc, sub.Job.Id)
	first := strings.Index(logs, "[bmaas] attempt 1 of job "+sub.Job.Id+", rank 0, on node r1")
	second := strings.Index(logs, "[bmaas] attempt 2 of job "+sub.Job.Id+", rank 0, on node r1")
	resumed := strings.Index(logs, "resumed from step ")
	require.True(t, first >= 0 && second > first && resumed > second, "each attempt starts its log, the second resumes:\n%s", logs)
	require.Equal(t, 1, strings.Count(logs, "resumed from step "), "only the second attempt resumed:\n%s", logs)
}

//go:build integration

package tests

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/protobuf/proto"

	gatewayv1 "github.com/bmaas/bmaas/api/bmaas/gateway/v1"
	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
	schedulerv1 "github.com/bmaas/bmaas/api/bmaas/scheduler/v1"
	"github.com/bmaas/bmaas/internal/app"
	"github.com/bmaas/bmaas/services/scheduler/schedkeys"
	"github.com/bmaas/bmaas/tests/harness"
)

// TestGPUSharesOfADeployment: on a node of two fake 24 GiB GPUs, replicas
// asking 10 GiB each are packed two to a GPU, the node shows what each GPU
// holds, and the replica that fits on no GPU waits saying why. A process
// job with a whole GPU still gets it as CUDA_VISIBLE_DEVICES.
func TestGPUSharesOfADeployment(t *testing.T) {
	t.Parallel()
	c := harness.Start(t, withFastGateway(), func(cfg *app.Config) {
		cfg.TrainerAgent.FakeGPUs = 2
		cfg.TrainerAgent.FakeGPUMemory = 24 << 30
		// Room for every replica's CPU and memory: GPU memory decides.
		cfg.TrainerAgent.CPUMillis = 64000
		cfg.TrainerAgent.MemoryBytes = 64 << 30
	})
	ctx := t.Context()
	sc := schedulerv1.NewSchedulerServiceClient(c.Conn)
	cli := c.EtcdClient(t)
	uploadDatasetFile(t, c.Registry, "iris", "iris.csv")
	_, err := c.Registry.CreateModel(ctx, &registryv1.CreateModelRequest{Model: &registryv1.Model{Name: "iris"}})
	require.NoError(t, err)
	trainVersion(t, c, "iris", "iris", "logistic")

	// Five replicas of 10 GiB: four fit (two per GPU), the fifth waits.
	dc := gatewayv1.NewDeploymentServiceClient(c.Conn)
	_, err = dc.CreateDeployment(ctx, &gatewayv1.CreateDeploymentRequest{Deployment: &gatewayv1.Deployment{
		Model: "iris@latest", MinReplicas: 5, MaxReplicas: 5,
		Resources: &schedulerv1.Resources{CpuMillis: 100, GpuMemoryBytes: 10 << 30}}})
	require.NoError(t, err)

	const waiting = "Waiting for capacity: needs 10GiB on one GPU, the most free on any GPU is 4GiB"
	var gpus []int32
	var reasons []string
	eventually(t, time.Minute, "four replicas placed, the fifth waiting", func() bool {
		d, err := dc.GetDeployment(ctx, &gatewayv1.GetDeploymentRequest{Name: "iris"})
		require.NoError(t, err)
		gpus, reasons = nil, nil
		for _, r := range d.Deployment.GetStatus().GetReplicas() {
			j, err := sc.GetJob(ctx, &schedulerv1.GetJobRequest{Id: r.Id})
			require.NoError(t, err)
			if len(j.Job.Nodes) == 0 {
				reasons = append(reasons, r.Reason)
				continue
			}
			idx, ok := replicaGPU(t, cli, j.Job)
			if !ok {
				return false
			}
			gpus = append(gpus, idx)
		}
		return len(gpus) == 4 && len(reasons) == 1 && reasons[0] == waiting
	})
	slices.Sort(gpus)
	require.Equal(t, []int32{0, 0, 1, 1}, gpus, "two shares to a GPU")
	require.Equal(t, []string{waiting}, reasons)

	nodes, err := sc.ListNodes(ctx, &schedulerv1.ListNodesRequest{})
	require.NoError(t, err)
	require.Len(t, nodes.Nodes, 1)
	n := nodes.Nodes[0]
	require.Len(t, n.Gpus, 2)
	for _, g := range n.Gpus {
		require.Equal(t, int64(24<<30), g.MemoryBytes)
		require.Equal(t, int64(20<<30), g.AllocatedMemoryBytes, "GPU %d", g.Index)
		require.Zero(t, g.UsedMemoryBytes, "fake GPUs report nothing in use")
	}
	require.Zero(t, n.AllocatedGpus)

	// Both GPUs hold shares: a process job asking a whole GPU waits; when
	// the deployment goes, it runs with CUDA_VISIBLE_DEVICES set.
	_, err = c.Registry.CreateModel(ctx, &registryv1.CreateModelRequest{Model: &registryv1.Model{Name: "cuda"}})
	require.NoError(t, err)
	sub, err := sc.SubmitJob(ctx, &schedulerv1.SubmitJobRequest{Spec: &schedulerv1.JobSpec{Model: "cuda",
		Resources: &schedulerv1.Resources{CpuMillis: 100, Gpus: 1},
		Runtime: &schedulerv1.JobSpec_Process{Process: &schedulerv1.ProcessRuntime{
			Command: "sh", Args: []string{"-c", `echo "cuda=[$CUDA_VISIBLE_DEVICES]" | tee "$BMAAS_OUTPUT_DIR/cuda.txt"; test -n "$CUDA_VISIBLE_DEVICES"`}}}}})
	require.NoError(t, err)
	eventually(t, 30*time.Second, "whole GPU waits for shares to go", func() bool {
		j, err := sc.GetJob(ctx, &schedulerv1.GetJobRequest{Id: sub.Job.Id})
		require.NoError(t, err)
		return j.Job.State == schedulerv1.JobState_JOB_STATE_QUEUED && j.Job.Reason != ""
	})
	_, err = dc.DeleteDeployment(ctx, &gatewayv1.DeleteDeploymentRequest{Name: "iris"})
	require.NoError(t, err)
	job := waitJob(t, sc, sub.Job.Id, 2*time.Minute)
	require.Equal(t, schedulerv1.JobState_JOB_STATE_SUCCEEDED, job.State, "reason: %s", job.Reason)
	logs, err := sc.GetJobLogs(ctx, &schedulerv1.GetJobLogsRequest{Id: sub.Job.Id})
	require.NoError(t, err)
	var got string
	for {
		m, err := logs.Recv()
		if err != nil {
			break
		}
		got += strings.Join(m.Lines, "\n")
	}
	require.Regexp(t, `cuda=\[[01]\]`, got)
}

// replicaGPU is the GPU index the assignment of a placed replica's job
// names (false until it is written).
func replicaGPU(t *testing.T, cli *clientv3.Client, j *schedulerv1.Job) (int32, bool) {
	t.Helper()
	resp, err := cli.Get(t.Context(), schedkeys.AssignmentsOf(j.Nodes[0]), clientv3.WithPrefix())
	require.NoError(t, err)
	for _, kv := range resp.Kvs {
		var a schedulerv1.Assignment
		require.NoError(t, proto.Unmarshal(kv.Value, &a))
		if a.JobId == j.Id {
			require.Len(t, a.GpuIndices, 1, "a share is on one GPU")
			return a.GpuIndices[0], true
		}
	}
	return 0, false
}

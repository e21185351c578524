//go:build integration

package tests

import (
	"context"
	"fmt"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
	schedulerv1 "github.com/bmaas/bmaas/api/bmaas/scheduler/v1"
	"github.com/bmaas/bmaas/pkg/election"
	"github.com/bmaas/bmaas/tests/harness"
)

// processCluster is bmaas run as separate OS processes on an external etcd
// and NATS: one registry, some schedulers, some agents.
type processCluster struct {
	etcd       *harness.External
	nats       *harness.External
	common     []string
	registry   *harness.Process
	schedulers []*harness.Process
	agents     map[string]*harness.Process
	cli        *clientv3.Client
}

func startProcessCluster(t *testing.T, schedulers int, agents []string, agentArgs ...string) *processCluster {
	t.Helper()
	etcd := harness.ExternalEtcd(t)
	natsSrv := harness.ExternalNATS(t)
	pc := &processCluster{etcd: etcd, nats: natsSrv, agents: map[string]*harness.Process{},
		common: []string{"--etcd-endpoints", etcd.URL, "--nats-url", natsSrv.URL, "--scheduler.leader-ttl", "2s"}}
	pc.registry = harness.StartProcess(t, pc.args("--target=registry", "--data-dir", t.TempDir())...)
	for range schedulers {
		pc.schedulers = append(pc.schedulers, harness.StartProcess(t, pc.args("--target=scheduler", "--data-dir", t.TempDir())...))
	}
	for _, name := range agents {
		args := pc.args("--target=trainer-agent", "--data-dir", t.TempDir(), "--trainer-agent.node", name, "--trainer-agent.lease-ttl", "2s")
		pc.agents[name] = harness.StartProcess(t, append(args, agentArgs...)...)
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{etcd.URL}, DialTimeout: 5 * time.Second})
	require.NoError(t, err)
	t.Cleanup(func() { _ = cli.Close() })
	pc.cli = cli
	return pc
}

func (pc *processCluster) args(extra ...string) []string {
	return append(append([]string{"serve", "--log.level", "info"}, extra...), pc.common...)
}

func dial(t *testing.T, addr string) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// waitNodes waits until n agents have registered their nodes.
func waitNodes(t *testing.T, sc schedulerv1.SchedulerServiceClient, n int) {
	t.Helper()
	require.Eventually(t, func() bool {
		resp, err := sc.ListNodes(t.Context(), &schedulerv1.ListNodesRequest{})
		return err == nil && len(resp.Nodes) == n
	}, 30*time.Second, 20*time.Millisecond)
}

var failoverRE = regexp.MustCompile(`msg=failover .*duration=(\S+)`)

// TestSchedulerFailoverUnderLoad runs two schedulers and three agents as
// separate processes, queues 200 short jobs and kills the leader with
// SIGKILL mid-queue: every job succeeds, each exactly once.
func TestSchedulerFailoverUnderLoad(t *testing.T) {
	t.Parallel()
	pc := startProcessCluster(t, 2, []string{"a1", "a2", "a3"})
	ctx := t.Context()
	rc := registryv1.NewRegistryServiceClient(dial(t, pc.registry.GRPC))
	scs := []schedulerv1.SchedulerServiceClient{
		schedulerv1.NewSchedulerServiceClient(dial(t, pc.schedulers[0].GRPC)),
		schedulerv1.NewSchedulerServiceClient(dial(t, pc.schedulers[1].GRPC)),
	}
	uploadDatasetFile(t, rc, "iris", "iris.csv")
	_, err := rc.CreateModel(ctx, &registryv1.CreateModelRequest{Model: &registryv1.Model{Name: "many"}})
	require.NoError(t, err)
	waitNodes(t, scs[0], 3)

	const jobs = 200
	ids := make([]string, jobs)
	for i := range jobs {
		spec := builtinSpec("many", "iris", "logistic", map[string]string{"C": fmt.Sprint(1 + i%5)})
		spec.Resources = &schedulerv1.Resources{CpuMillis: 250, MemoryBytes: 64 << 20}
		resp, err := scs[i%2].SubmitJob(ctx, &schedulerv1.SubmitJobRequest{Spec: spec}, grpc.WaitForReady(true))
		require.NoError(t, err)
		ids[i] = resp.Job.Id
	}

	// Kill the leader once a quarter of the jobs have succeeded.
	leaderID, _, err := election.Leader(ctx, pc.cli, "scheduler")
	require.NoError(t, err)
	var leader, survivor *harness.Process
	var sc schedulerv1.SchedulerServiceClient
	for i, p := range pc.schedulers {
		if p.GRPC == leaderID {
			leader, survivor, sc = p, pc.schedulers[1-i], scs[1-i]
		}
	}
	require.NotNil(t, leader, "leader %q is one of the schedulers", leaderID)
	require.Eventually(t, func() bool {
		resp, err := scs[0].ListJobs(ctx, &schedulerv1.ListJobsRequest{State: schedulerv1.JobState_JOB_STATE_SUCCEEDED, PageSize: 1000})
		return err == nil && len(resp.Jobs) >= jobs/4
	}, 2*time.Minute, 50*time.Millisecond)
	killed := time.Now()
	leader.Kill()
	require.Eventually(t, func() bool {
		id, _, err := election.Leader(ctx, pc.cli, "scheduler")
		return err == nil && id == survivor.GRPC
	}, 30*time.Second, 5*time.Millisecond)
	takeover := time.Since(killed)

	var wg sync.WaitGroup
	results := make([]*schedulerv1.Job, jobs)
	for i, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = waitJob(t, sc, id, 4*time.Minute)
		}()
	}
	wg.Wait()
	for _, j := range results {
		require.Equal(t, schedulerv1.JobState_JOB_STATE_SUCCEEDED, j.State, "job %s: %s", j.Id, j.Reason)
	}

	// Exactly once: one version per job, each job's own.
	seen := map[string]int{}
	token := ""
	for {
		resp, err := rc.ListModelVersions(ctx, &registryv1.ListModelVersionsRequest{Model: "many", PageSize: 1000, PageToken: token})
		require.NoError(t, err)
		for _, v := range resp.Versions {
			seen[v.Lineage.GetJobId()]++
		}
		if token = resp.NextPageToken; token == "" {
			break
		}
	}
	require.Len(t, seen, jobs)
	for _, id := range ids {
		require.Equal(t, 1, seen[id], "job %s registered one version", id)
	}

	m := failoverRE.FindStringSubmatch(survivor.Output())
	require.NotNil(t, m, "the new leader logs its failover")
	t.Logf("failover: the standby led %s after the leader's SIGKILL (lease TTL 2s); its first reconcile took %s",
		takeover.Round(time.Millisecond), m[1])
}

// TestGlooJobAcrossTwoAgents runs the two-worker DistributedDataParallel
// example across two agent processes: each worker sees its RANK and
// WORLD_SIZE, and the job succeeds.
func TestGlooJobAcrossTwoAgents(t *testing.T) {
	t.Parallel()
	if !hasTorch() {
		t.Skip("/usr/bin/python3 lacks torch and onnx (Debian's python3-torch and python3-onnx; .ci/run installs them)")
	}
	pc := startProcessCluster(t, 1, []string{"g1", "g2"}, "--trainer-agent.fake-gpus", "1")
	ctx := t.Context()
	rc := registryv1.NewRegistryServiceClient(dial(t, pc.registry.GRPC))
	sc := schedulerv1.NewSchedulerServiceClient(dial(t, pc.schedulers[0].GRPC))
	uploadDatasetFile(t, rc, "breast-cancer", "breast_cancer.csv")
	_, err := rc.CreateModel(ctx, &registryv1.CreateModelRequest{Model: &registryv1.Model{Name: "ddp"}})
	require.NoError(t, err)
	waitNodes(t, sc, 2)
	dir := examplesDir(t)
	spec := &schedulerv1.JobSpec{Model: "ddp", Workers: 2, Resources: &schedulerv1.Resources{Gpus: 1},
		Runtime: &schedulerv1.JobSpec_Process{Process: &schedulerv1.ProcessRuntime{
			Command: "/usr/bin/python3", Args: []string{"ddp_train.py"}, Workdir: dir, Dataset: "breast-cancer",
			Hyperparameters: map[string]string{"epochs": "2"}}}}
	sub, err := sc.SubmitJob(ctx, &schedulerv1.SubmitJobRequest{Spec: spec})
	require.NoError(t, err)
	job := waitJob(t, sc, sub.Job.Id, 3*time.Minute)
	require.Equal(t, schedulerv1.JobState_JOB_STATE_SUCCEEDED, job.State, "reason: %s", job.Reason)
	require.ElementsMatch(t, []string{"g1", "g2"}, job.Nodes, "one GPU each: the gang spans both agents")

	logs := jobLogs(t, sc, sub.Job.Id)
	require.Contains(t, logs, "rank 0 of WORLD_SIZE 2")
	require.Contains(t, logs, "rank 1 of WORLD_SIZE 2")
}

func jobLogs(t *testing.T, sc schedulerv1.SchedulerServiceClient, id string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	stream, err := sc.GetJobLogs(ctx, &schedulerv1.GetJobLogsRequest{Id: id})
	require.NoError(t, err)
	var out string
	for {
		resp, err := stream.Recv()
		if err != nil {
			return out
		}
		for _, l := range resp.Lines {
			out += l + "\n"
		}
	}
}

//go:build integration

package scheduler

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/protobuf/proto"

	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
	schedulerv1 "github.com/bmaas/bmaas/api/bmaas/scheduler/v1"
	"github.com/bmaas/bmaas/internal/testenv"
	"github.com/bmaas/bmaas/internal/testenv/registrytest"
	"github.com/bmaas/bmaas/pkg/events"
	"github.com/bmaas/bmaas/services/scheduler/schedkeys"
)

const waitFor = 15 * time.Second

// gpuMemGiB is the memory of every test node's GPUs.
const gpuMemGiB = 16

// env is one embedded etcd and NATS, a registry with model "m" and
// dataset "toy", and schedulers started on demand.
type env struct {
	t         *testing.T
	endpoints []string
	cli       *clientv3.Client
	bus       *events.Bus
	reg       registryv1.RegistryServiceClient
}

func newEnv(t *testing.T, withRegistry bool) *env {
	t.Helper()
	e := &env{t: t, endpoints: testenv.Etcd(t)}
	e.cli = testenv.NewEtcdClient(t, e.endpoints)
	bus, err := events.NewBus(t.Context(), testenv.NATSConn(t), events.Config{}, nil)
	require.NoError(t, err)
	e.bus = bus
	if withRegistry {
		e.startRegistry()
	}
	return e
}

func (e *env) startRegistry() {
	r := registrytest.Start(e.t, registrytest.Options{Etcd: e.cli})
	r.CreateModel(e.t, "m")
	registrytest.UploadDataset(e.t, r.Client, "toy", "toy.csv", []byte("a,b,target\n1,2,0\n3,4,1\n5,6,0\n"))
	e.reg = r.Client
}

// sched is one scheduler replica.
type sched struct {
	svc    *Service
	c      schedulerv1.SchedulerServiceClient
	logs   *testenv.Buffer
	cancel context.CancelFunc
	done   chan struct{}
}

// start runs a scheduler replica with its own etcd client until stop.
func (e *env) start(id string, mutate func(*Config)) *sched {
	t := e.t
	cfg := DefaultConfig()
	cfg.LeaderTTL = time.Second
	cfg.Resync = 100 * time.Millisecond
	if mutate != nil {
		mutate(&cfg)
	}
	logs := &testenv.Buffer{}
	deps := Deps{Logger: slog.New(slog.NewTextHandler(logs, nil)), Etcd: testenv.NewEtcdClient(t, e.endpoints), Bus: e.bus, Addr: id}
	if e.reg != nil {
		deps.Registry = e.reg
	}
	svc, err := New(cfg, deps)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	s := &sched{svc: svc, logs: logs, cancel: cancel, done: make(chan struct{})}
	s.c = schedulerv1.NewSchedulerServiceClient(testenv.Serve(t, svc.Register))
	go func() {
		defer close(s.done)
		_ = svc.Run(ctx)
	}()
	t.Cleanup(s.stop)
	return s
}

func (s *sched) stop() {
	s.cancel()
	<-s.done
}

// node registers a node under a lease of its own, as an agent does, its
// GPUs of gpuMemGiB each; the returned function makes it vanish.
func (e *env) node(name string, cpu int64, memGiB int64, gpus int) func() {
	t := e.t
	lease, err := e.cli.Grant(t.Context(), 30)
	require.NoError(t, err)
	n := &schedulerv1.Node{Name: name, Address: "10.0.0.1:7000", Host: name + ".local", CpuMillis: cpu, MemoryBytes: memGiB << 30}
	for i := range gpus {
		n.Gpus = append(n.Gpus, &schedulerv1.Gpu{Index: int32(i), Model: "Fake T4", Fake: true, MemoryBytes: gpuMemGiB << 30})
	}
	b, err := proto.Marshal(n)
	require.NoError(t, err)
	_, err = e.cli.Put(t.Context(), schedkeys.Node(name), string(b), clientv3.WithLease(lease.ID))
	require.NoError(t, err)
	return func() {
		_, err := e.cli.Revoke(context.Background(), lease.ID)
		require.NoError(t, err)
	}
}

// assignments returns a job's assignments with their keys' create revisions.
func (e *env) assignments(job string) map[string]*schedulerv1.Assignment {
	resp, err := e.cli.Get(e.t.Context(), schedkeys.AssignmentsPrefix, clientv3.WithPrefix())
	require.NoError(e.t, err)
	out := map[string]*schedulerv1.Assignment{}
	for _, kv := range resp.Kvs {
		if _, j, _, _ := schedkeys.ParseAssignment(string(kv.Key)); j == job {
			a := &schedulerv1.Assignment{}
			require.NoError(e.t, proto.Unmarshal(kv.Value, a))
			out[string(kv.Key)] = a
		}
	}
	return out
}

// report writes a worker's TaskStatus as the contract says: only while its
// assignment still exists with the create revision the agent saw.
func (e *env) report(job string, rank int32, state schedulerv1.TaskState, mutate func(*schedulerv1.TaskStatus)) {
	t := e.t
	resp, err := e.cli.Get(t.Context(), schedkeys.AssignmentsPrefix, clientv3.WithPrefix())
	require.NoError(t, err)
	for _, kv := range resp.Kvs {
		a := &schedulerv1.Assignment{}
		require.NoError(t, proto.Unmarshal(kv.Value, a))
		if a.JobId != job || a.Rank != rank {
			continue
		}
		st := &schedulerv1.TaskStatus{JobId: job, Rank: rank, Attempt: a.Attempt, Node: a.Node, State: state, Term: a.Term}
		if mutate != nil {
			mutate(st)
		}
		b, err := proto.Marshal(st)
		require.NoError(t, err)
		tr, err := e.cli.Txn(t.Context()).
			If(clientv3.Compare(clientv3.CreateRevision(string(kv.Key)), "=", kv.CreateRevision)).
			Then(clientv3.OpPut(schedkeys.Task(job, rank), string(b))).Commit()
		require.NoError(t, err)
		require.True(t, tr.Succeeded)
		return
	}
	t.Fatalf("no assignment for %s rank %d", job, rank)
}

// wait polls the job until cond holds.
func (e *env) wait(c schedulerv1.SchedulerServiceClient, id string, cond func(*schedulerv1.Job) bool) *schedulerv1.Job {
	e.t.Helper()
	var last *schedulerv1.Job
	poll(e.t, func() bool {
		resp, err := c.GetJob(e.t.Context(), &schedulerv1.GetJobRequest{Id: id})
		require.NoError(e.t, err)
		last = resp.Job
		return cond(last)
	}, func() string { return fmt.Sprintf("job %s never got there; last: %v", id, last) })
	return last
}

// poll checks cond every few milliseconds until it holds, failing with
// what() after waitFor.
func poll(t *testing.T, cond func() bool, what func() string) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal(what())
		}
		<-tick.C
	}
}

func inState(s schedulerv1.JobState) func(*schedulerv1.Job) bool {
	return func(j *schedulerv1.Job) bool { return j.State == s }
}

// spec is a small valid builtin job.
func spec(mutate func(*schedulerv1.JobSpec)) *schedulerv1.JobSpec {
	s := &schedulerv1.JobSpec{Model: "m", Runtime: &schedulerv1.JobSpec_Builtin{Builtin: &schedulerv1.BuiltinRuntime{
		Algorithm: "logistic", Dataset: "toy", TargetColumn: "target"}},
		Resources: &schedulerv1.Resources{CpuMillis: 1000, MemoryBytes: 1 << 30}}
	if mutate != nil {
		mutate(s)
	}
	return s
}

//go:build integration

package traineragent_test

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
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
	"github.com/bmaas/bmaas/pkg/mesh"
	"github.com/bmaas/bmaas/pkg/store"
	"github.com/bmaas/bmaas/services/scheduler/schedkeys"
	"github.com/bmaas/bmaas/services/traineragent"
)

// env is a real etcd, NATS and registry for agents to run against.
type env struct {
	t   *testing.T
	cli *clientv3.Client
	bus *events.Bus
	reg registryv1.RegistryServiceClient
	// registry is the service behind reg.
	registry *registrytest.Registry
	dialer   *mesh.Dialer
}

func newEnv(t *testing.T) *env {
	t.Helper()
	cli := testenv.EtcdClient(t)
	bus, err := events.NewBus(t.Context(), testenv.NATSConn(t), events.Config{}, nil)
	require.NoError(t, err)
	reg := registrytest.Start(t, registrytest.Options{Etcd: cli, Events: bus, Member: "registry-1"})
	d := mesh.NewDialer(cli, "", nil)
	t.Cleanup(d.Close)
	return &env{t: t, cli: cli, bus: bus, reg: reg.Client, registry: reg, dialer: d}
}

// agent runs an agent on node until the test ends (or stop is called).
type agent struct {
	svc  *traineragent.Service
	stop context.CancelFunc
	done chan struct{}
	err  error
}

func (e *env) agent(node string, mutate func(*traineragent.Config)) *agent {
	e.t.Helper()
	return e.agentOn(e.cli, node, mutate)
}

// agentOn runs an agent whose etcd client is cli.
func (e *env) agentOn(cli *clientv3.Client, node string, mutate func(*traineragent.Config)) *agent {
	e.t.Helper()
	cfg := traineragent.DefaultConfig()
	cfg.Node, cfg.WorkDir, cfg.FlushInterval = node, e.t.TempDir(), 100*time.Millisecond
	cfg.CheckpointInterval = 200 * time.Millisecond
	if mutate != nil {
		mutate(&cfg)
	}
	logger := slog.New(slog.DiscardHandler)
	if testing.Verbose() {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	svc, err := traineragent.New(cfg, traineragent.Deps{Logger: logger, Etcd: cli, Bus: e.bus, Dialer: e.dialer, Addr: "127.0.0.1:1"})
	require.NoError(e.t, err)
	ctx, cancel := context.WithCancel(context.Background())
	a := &agent{svc: svc, stop: cancel, done: make(chan struct{})}
	go func() {
		defer close(a.done)
		a.err = svc.Run(ctx)
	}()
	e.t.Cleanup(func() {
		cancel()
		<-a.done
	})
	e.waitNode(node)
	return a
}

func (e *env) node(name string) (*schedulerv1.Node, int64) {
	resp, err := e.cli.Get(e.t.Context(), schedkeys.Node(name))
	require.NoError(e.t, err)
	if len(resp.Kvs) == 0 {
		return nil, 0
	}
	n := &schedulerv1.Node{}
	require.NoError(e.t, proto.Unmarshal(resp.Kvs[0].Value, n))
	return n, resp.Kvs[0].Lease
}

func (e *env) waitNode(name string) *schedulerv1.Node {
	var n *schedulerv1.Node
	require.Eventually(e.t, func() bool { n, _ = e.node(name); return n != nil }, 10*time.Second, 10*time.Millisecond)
	return n
}

// assign writes an assignment as the scheduler's leader would.
func (e *env) assign(a *schedulerv1.Assignment) {
	e.t.Helper()
	if a.WorldSize == 0 {
		a.WorldSize = 1
	}
	b, err := proto.Marshal(a)
	require.NoError(e.t, err)
	_, err = e.cli.Put(e.t.Context(), assignKey(a), string(b))
	require.NoError(e.t, err)
}

func assignKey(a *schedulerv1.Assignment) string {
	return schedkeys.Assignment(a.Node, a.JobId, a.Rank)
}

func (e *env) unassign(a *schedulerv1.Assignment) {
	_, err := e.cli.Delete(e.t.Context(), assignKey(a))
	require.NoError(e.t, err)
}

func (e *env) task(job string, rank int32) *schedulerv1.TaskStatus {
	st := &schedulerv1.TaskStatus{}
	if _, err := store.New(e.cli).Get(e.t.Context(), schedkeys.Task(job, rank), st); err != nil {
		return nil
	}
	return st
}

// waitTask polls the task's status until it is in state (or a terminal
// state, which fails the test when it is not the one expected).
func (e *env) waitTask(job string, rank int32, state schedulerv1.TaskState, within time.Duration) *schedulerv1.TaskStatus {
	e.t.Helper()
	deadline := time.Now().Add(within)
	for {
		st := e.task(job, rank)
		if st != nil && st.State == state {
			return st
		}
		if st != nil && st.State >= schedulerv1.TaskState_TASK_STATE_SUCCEEDED {
			e.t.Fatalf("task %s/%d ended %s, want %s: %s", job, rank, st.State, state, st.Message)
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("task %s/%d is %v after %s, want %s", job, rank, st, within, state)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// dataset uploads a CSV from examples/datasets (file name with '_',
// dataset name with '-') and returns its version.
func (e *env) dataset(file string) int64 {
	e.t.Helper()
	name := strings.ReplaceAll(file, "_", "-")
	b, err := os.ReadFile(filepath.Join("..", "..", "examples", "datasets", file+".csv"))
	require.NoError(e.t, err)
	return registrytest.UploadDataset(e.t, e.reg, name, name+".csv", b).Version
}

func (e *env) model(name string) { e.registry.CreateModel(e.t, name) }

func (e *env) version(model string, v int64) *registryv1.ModelVersion {
	resp, err := e.reg.GetModelVersion(e.t.Context(), &registryv1.GetModelVersionRequest{Model: model, Version: strconv.FormatInt(v, 10)})
	require.NoError(e.t, err)
	return resp.Version
}

func (e *env) download(model string, v int64) []byte {
	st, err := e.reg.DownloadModelVersion(e.t.Context(), &registryv1.DownloadModelVersionRequest{Model: model, Version: strconv.FormatInt(v, 10)})
	require.NoError(e.t, err)
	var buf bytes.Buffer
	for {
		m, err := st.Recv()
		if err != nil {
			break
		}
		buf.Write(m.GetChunk())
	}
	return buf.Bytes()
}

//go:build integration

package scheduler

import (
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"

	schedulerv1 "github.com/bmaas/bmaas/api/bmaas/scheduler/v1"
	"github.com/bmaas/bmaas/pkg/election"
	"github.com/bmaas/bmaas/services/scheduler/schedkeys"
)

func TestFailover(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false)
	e.node("n1", 16000, 64, 0)
	a := e.start("a", nil)
	poll(t, func() bool {
		id, _, err := election.Leader(t.Context(), e.cli, electionService)
		return err == nil && id == "a"
	}, func() string { return "a never led" })
	b := e.start("b", nil)
	_, term1, err := election.Leader(t.Context(), e.cli, electionService)
	require.NoError(t, err)

	first := submit(t, a, spec(nil))
	e.wait(a.c, first, inState(stScheduled))
	e.report(first, 0, taskRunning, nil)
	e.wait(a.c, first, inState(stRunning))
	oldFence, err := election.Fence(t.Context(), e.cli, electionService, term1)
	require.NoError(t, err)

	a.stop()
	poll(t, func() bool {
		id, _, err := election.Leader(t.Context(), e.cli, electionService)
		return err == nil && id == "b"
	}, func() string { return "b never took over" })
	_, term2, err := election.Leader(t.Context(), e.cli, electionService)
	require.NoError(t, err)
	require.Greater(t, term2, term1)

	// The live assignment is re-stamped with the new term, same key.
	poll(t, func() bool {
		for _, as := range e.assignments(first) {
			return as.Term == term2
		}
		return false
	}, func() string { return "assignment not re-stamped" })
	// The failover is logged with its duration.
	poll(t, func() bool { return b.logs.Contains("msg=failover") }, func() string { return "no failover logged:\n" + b.logs.String() })
	m := regexp.MustCompile(`msg=failover duration=(\S+)`).FindStringSubmatch(b.logs.String())
	require.NotNil(t, m)
	d, err := time.ParseDuration(m[1])
	require.NoError(t, err)
	require.Less(t, d, 5*time.Second)

	// The new leader carries on: the old job ends, a new one is placed.
	e.report(first, 0, taskSucceeded, nil)
	e.wait(b.c, first, inState(stSucceeded))
	second := submit(t, b, spec(nil))
	e.wait(b.c, second, inState(stScheduled))
	resp, err := e.cli.Get(t.Context(), schedkeys.AssignmentsPrefix, clientv3.WithPrefix())
	require.NoError(t, err)
	require.Len(t, resp.Kvs, 1, "nothing is double-assigned")

	// A deposed leader writes nothing: its fence fails.
	stale := &leader{Scheduler: b.svc.sched, term: term1, fence: oldFence}
	tx := &txn{}
	require.NoError(t, tx.put(schedkeys.Assignment("n1", "ghost", 0), &schedulerv1.Assignment{JobId: "ghost"}))
	require.NoError(t, stale.flush(t.Context(), []*txn{tx}))
	got, err := e.cli.Get(t.Context(), schedkeys.Assignment("n1", "ghost", 0))
	require.NoError(t, err)
	require.Empty(t, got.Kvs)
}

func TestTwoReplicasNeverDoubleAssign(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false)
	for _, n := range []string{"n1", "n2", "n3"} {
		e.node(n, 4000, 8, 0)
	}
	a := e.start("a", nil)
	b := e.start("b", nil)
	var ids []string
	for i := range 30 {
		c := a
		if i%2 == 1 {
			c = b
		}
		ids = append(ids, submit(t, c, spec(func(s *schedulerv1.JobSpec) { s.Resources.CpuMillis = 500 })))
		if i == 10 {
			a.stop() // the leader or the standby goes away mid-queue
		}
	}
	// 3 nodes x 8 slots: 24 placed, 6 waiting; capacity is never exceeded.
	poll(t, func() bool {
		resp, err := e.cli.Get(t.Context(), schedkeys.AssignmentsPrefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
		require.NoError(t, err)
		return resp.Count == 24
	}, func() string { return "not all placed" })
	for _, n := range []string{"n1", "n2", "n3"} {
		node, err := b.c.GetNode(t.Context(), &schedulerv1.GetNodeRequest{Name: n})
		require.NoError(t, err)
		require.Equal(t, int64(4000), node.Node.AllocatedCpuMillis)
	}
	for _, id := range ids {
		require.LessOrEqual(t, len(e.assignments(id)), 1)
	}
}

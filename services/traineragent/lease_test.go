//go:build integration

package traineragent_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"

	schedulerv1 "github.com/bmaas/bmaas/api/bmaas/scheduler/v1"
	"github.com/bmaas/bmaas/internal/testenv"
	"github.com/bmaas/bmaas/services/traineragent"
)

// slowClient is an etcd client of e's etcd whose lease renewals a test
// slows down.
func (e *env) slowClient() (*clientv3.Client, *testenv.SlowLease) {
	cli := testenv.NewEtcdClient(e.t, e.cli.Endpoints())
	sl := testenv.NewSlowLease(cli.Lease)
	cli.Lease = sl
	return cli, sl
}

func allAlive(pids []int) bool {
	for _, p := range pids {
		if !alive(p) {
			return false
		}
	}
	return true
}

// TestSlowKeepAliveKillsNoWorker: every renewal of the node's lease is
// answered 60% of a TTL late (a loaded machine): the lease holds, and no
// worker is killed.
func TestSlowKeepAliveKillsNoWorker(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	cli, sl := e.slowClient()
	e.agentOn(cli, "k1", func(c *traineragent.Config) { c.LeaseTTL = 2 * time.Second })
	pids := e.startStubborn("k1", "jobk")
	_, lease := e.node("k1")
	sl.Set(1200*time.Millisecond, false, false)
	require.Never(t, func() bool { return !allAlive(pids) }, 6*time.Second, 50*time.Millisecond, "a worker was killed")
	_, now := e.node("k1")
	require.Equal(t, lease, now, "the node kept its lease")
}

// TestUnansweredKeepAliveFences: renewals cut off (etcd unreachable from
// the agent): the agent kills its workers a TTL after its last answered
// renewal, as etcd lets the lease lapse, and registers again once etcd
// answers.
func TestUnansweredKeepAliveFences(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	cli, sl := e.slowClient()
	e.agentOn(cli, "u1", func(c *traineragent.Config) { c.LeaseTTL = 2 * time.Second })
	pids := e.startStubborn("u1", "jobu")
	_, lease := e.node("u1")
	sl.Set(0, false, true)
	gone(t, pids, 4*time.Second)
	sl.Set(0, false, false)
	require.Eventually(t, func() bool {
		n, l := e.node("u1")
		return n != nil && l != lease
	}, 10*time.Second, 20*time.Millisecond, "registered again under a new lease")
	require.Equal(t, schedulerv1.TaskState_TASK_STATE_RUNNING, e.task("jobu", 0).State, "a fenced worker reports nothing")
}

// TestSingleProcessLeaseLossKillsNoWorker: under bmaas up the node's
// lease can only be lost to a starved process; the node registers again
// at once and its workers keep running (the scheduler beside it removes
// what it moved, and the agent sees that).
func TestSingleProcessLeaseLossKillsNoWorker(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.agent("p1", func(c *traineragent.Config) { c.SingleProcess = true })
	pids := e.startStubborn("p1", "jobp")
	_, lease := e.node("p1")
	_, err := e.cli.Revoke(t.Context(), clientv3.LeaseID(lease))
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		n, l := e.node("p1")
		return n != nil && l != lease
	}, 10*time.Second, 20*time.Millisecond, "registered again under a new lease")
	require.Never(t, func() bool { return !allAlive(pids) }, time.Second, 20*time.Millisecond, "a worker was killed")

	e.unassign(&schedulerv1.Assignment{JobId: "jobp", Node: "p1"})
	gone(t, pids, 5*time.Second)
}

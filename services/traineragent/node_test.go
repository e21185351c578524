//go:build integration

package traineragent

import (
	"testing"

	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/bmaas/bmaas/internal/testenv"
	"github.com/bmaas/bmaas/pkg/mesh"
	"github.com/bmaas/bmaas/pkg/sandbox"
	"github.com/bmaas/bmaas/services/scheduler/schedkeys"
)

func newNodeService(t *testing.T, cli *clientv3.Client, single bool) *Service {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Node, cfg.WorkDir, cfg.Sandbox, cfg.SingleProcess = "n1", t.TempDir(), sandbox.None, single
	d := mesh.NewDialer(cli, "", nil)
	t.Cleanup(d.Close)
	s, err := New(cfg, Deps{Etcd: cli, Dialer: d, Addr: "127.0.0.1:1"})
	require.NoError(t, err)
	return s
}

func leaseOf(t *testing.T, cli *clientv3.Client, key string) (clientv3.LeaseID, bool) {
	t.Helper()
	resp, err := cli.Get(t.Context(), key)
	require.NoError(t, err)
	if len(resp.Kvs) == 0 {
		return 0, false
	}
	return clientv3.LeaseID(resp.Kvs[0].Lease), true
}

// TestLeaseKeysFollowTheNode: keys put under the node's lease (replica
// endpoints) are written again under the node's new lease, also those put
// while it had none; a deleted one is not.
func TestLeaseKeysFollowTheNode(t *testing.T) {
	t.Parallel()
	cli := testenv.EtcdClient(t)
	s := newNodeService(t, cli, false)
	ctx := t.Context()
	require.NoError(t, s.putUnderLease(ctx, "/ep/early", "e"), "before the node has a lease")
	_, ok := leaseOf(t, cli, "/ep/early")
	require.False(t, ok, "written once the node has a lease")

	first, err := s.register(ctx, true)
	require.NoError(t, err)
	require.NoError(t, s.putUnderLease(ctx, "/ep/a", "a"))
	require.NoError(t, s.putUnderLease(ctx, "/ep/gone", "g"))
	require.NoError(t, s.deleteUnderLease(ctx, "/ep/gone"))
	for _, k := range []string{schedkeys.Node("n1"), "/ep/early", "/ep/a"} {
		l, ok := leaseOf(t, cli, k)
		require.True(t, ok, k)
		require.Equal(t, first, l, k)
	}

	_, err = cli.Revoke(ctx, first)
	require.NoError(t, err)
	second, err := s.register(ctx, false)
	require.NoError(t, err)
	for _, k := range []string{schedkeys.Node("n1"), "/ep/early", "/ep/a"} {
		l, ok := leaseOf(t, cli, k)
		require.True(t, ok, k)
		require.Equal(t, second, l, k)
	}
	_, ok = leaseOf(t, cli, "/ep/gone")
	require.False(t, ok)
}

// TestSingleProcessDropsItsPredecessorsLease: bmaas up after a crash
// revokes the node lease the crashed process left, and so the replica
// endpoints that went with it; an agent apart from the scheduler does not
// (another process may hold the node's name).
func TestSingleProcessDropsItsPredecessorsLease(t *testing.T) {
	t.Parallel()
	for _, single := range []bool{true, false} {
		cli := testenv.EtcdClient(t)
		ctx := t.Context()
		old, err := cli.Grant(ctx, 60)
		require.NoError(t, err)
		_, err = cli.Put(ctx, schedkeys.Node("n1"), "", clientv3.WithLease(old.ID))
		require.NoError(t, err)
		_, err = cli.Put(ctx, "/ep/stale", "s", clientv3.WithLease(old.ID))
		require.NoError(t, err)

		s := newNodeService(t, cli, single)
		lease, err := s.register(ctx, true)
		require.NoError(t, err)
		l, _ := leaseOf(t, cli, schedkeys.Node("n1"))
		require.Equal(t, lease, l)
		_, stale := leaseOf(t, cli, "/ep/stale")
		require.Equal(t, !single, stale, "single process: %v", single)
		ttl, err := cli.TimeToLive(ctx, lease)
		require.NoError(t, err)
		want := map[bool]int64{true: 30, false: 5}[single]
		require.Equal(t, want, ttl.GrantedTTL, "the node lease's TTL, single process: %v", single)
	}
}

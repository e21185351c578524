//go:build integration

package membership

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/bmaas/bmaas/internal/testenv"
)

// keep runs KeepLease on a new lease of ttl in the background.
type kept struct {
	lease   clientv3.LeaseID
	key     string
	granted time.Time
	unsure  chan bool
	done    chan error
	cancel  context.CancelFunc
}

func keep(t *testing.T, cli *clientv3.Client, lc clientv3.Lease, ttl time.Duration) *kept {
	t.Helper()
	granted := time.Now()
	g, err := cli.Grant(t.Context(), int64(ttl/time.Second))
	require.NoError(t, err)
	key := "/kept/" + t.Name()
	_, err = cli.Put(t.Context(), key, "x", clientv3.WithLease(g.ID))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	k := &kept{lease: g.ID, key: key, granted: granted, unsure: make(chan bool, 16), done: make(chan error, 1), cancel: cancel}
	go func() { k.done <- KeepLease(ctx, lc, g.ID, ttl, granted, func(u bool) { k.unsure <- u }) }()
	t.Cleanup(func() { cancel(); <-k.done })
	return k
}

// alive says whether the key kept under the lease is still there.
func (k *kept) alive(t *testing.T, cli *clientv3.Client) bool {
	t.Helper()
	resp, err := cli.Get(t.Context(), k.key)
	require.NoError(t, err)
	return len(resp.Kvs) == 1
}

// TestKeepLeaseSlowAnswers: every answer comes 60% of a TTL after its
// renewal (etcd's KeepAlive, which renews a third of a TTL after an answer
// and gives up a TTL after the last one, often drops such a lease): the
// lease lives on and is never in doubt.
func TestKeepLeaseSlowAnswers(t *testing.T) {
	t.Parallel()
	cli := testenv.EtcdClient(t)
	lc := testenv.NewSlowLease(cli.Lease)
	lc.Set(1200*time.Millisecond, false, false)
	k := keep(t, cli, lc, 2*time.Second)
	select {
	case u := <-k.unsure:
		t.Fatalf("in doubt (%v) though every renewal was answered", u)
	case err := <-k.done:
		t.Fatalf("KeepLease ended: %v", err)
	case <-time.After(5 * time.Second): // three TTLs
	}
	require.True(t, k.alive(t, cli))
}

// TestKeepLeaseDoubtAndLoss: with renewals unanswered the lease is in
// doubt a TTL after the last answered renewal was sent (never later than
// etcd could let it lapse); answered again, the doubt goes; and when etcd
// dropped the lease, KeepLease says so.
func TestKeepLeaseDoubtAndLoss(t *testing.T) {
	t.Parallel()
	cli := testenv.EtcdClient(t)
	lc := testenv.NewSlowLease(cli.Lease)
	const ttl = 2 * time.Second
	k := keep(t, cli, lc, ttl)
	require.Eventually(t, func() bool { return lc.Renewals() > 0 }, 5*time.Second, 10*time.Millisecond)

	// Answers held (etcd still renews): in doubt, then sure again.
	held := time.Now()
	lc.Set(0, true, false)
	require.True(t, <-k.unsure)
	require.Less(t, time.Since(held), ttl+time.Second, "in doubt within a TTL of the last answered renewal")
	require.True(t, k.alive(t, cli), "etcd kept the lease")
	lc.Set(0, false, false)
	require.False(t, <-k.unsure)

	// Renewals cut off: in doubt before etcd lets the lease lapse.
	lc.Set(0, false, true)
	require.True(t, <-k.unsure)
	require.True(t, k.alive(t, cli), "in doubt before the lease lapsed")
	require.Eventually(t, func() bool { return !k.alive(t, cli) }, 3*ttl, 20*time.Millisecond)
	lc.Set(0, false, false)
	select {
	case err := <-k.done:
		require.ErrorIs(t, err, ErrLeaseLost)
	case <-time.After(3 * ttl):
		t.Fatal("KeepLease did not see the lease go")
	}
	k.done <- nil // for the cleanup
}

// TestKeepLeaseRevoked: a revoked lease ends KeepLease within a renewal.
func TestKeepLeaseRevoked(t *testing.T) {
	t.Parallel()
	cli := testenv.EtcdClient(t)
	k := keep(t, cli, cli.Lease, 5*time.Second)
	_, err := cli.Revoke(t.Context(), k.lease)
	require.NoError(t, err)
	select {
	case err := <-k.done:
		require.ErrorIs(t, err, ErrLeaseLost)
	case <-time.After(3 * time.Second):
		t.Fatal("KeepLease did not see the revocation")
	}
	k.done <- nil
}

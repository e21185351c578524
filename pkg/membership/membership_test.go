//go:build integration

package membership

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/bmaas/bmaas/internal/testenv"
)

const waitFor = 10 * time.Second

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

func ids(ms []Member) []string {
	out := []string{}
	for _, m := range ms {
		out = append(out, m.ID)
	}
	return out
}

func listIDs(t *testing.T, cli *clientv3.Client, service string) []string {
	t.Helper()
	ms, err := List(t.Context(), cli, service)
	require.NoError(t, err)
	return ids(ms)
}

func closed(t *testing.T, ch <-chan struct{}) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(waitFor):
		t.Fatal("channel not closed")
	}
}

func TestJoinListLeave(t *testing.T) {
	t.Parallel()
	cli := testenv.EtcdClient(t)
	ctx := t.Context()
	m := Member{ID: "sched-1", Service: "scheduler", Addr: "10.0.0.1:7070", Meta: map[string]string{"zone": "a"}}
	r, err := Join(ctx, cli, m, time.Second, quiet())
	require.NoError(t, err)
	_, err = Join(ctx, cli, Member{ID: "other", Service: "scheduler2"}, time.Second, quiet())
	require.NoError(t, err)

	got, err := List(ctx, cli, "scheduler")
	require.NoError(t, err)
	require.Equal(t, []Member{m}, got)
	resp, err := cli.Get(ctx, "/bmaas/v1/members/scheduler/sched-1")
	require.NoError(t, err)
	require.Len(t, resp.Kvs, 1)
	require.Equal(t, int64(r.Lease()), resp.Kvs[0].Lease)

	require.NoError(t, r.Update(ctx, map[string]string{"zone": "b", "load": "3"}))
	got, err = List(ctx, cli, "scheduler")
	require.NoError(t, err)
	require.Equal(t, map[string]string{"zone": "b", "load": "3"}, got[0].Meta)
	require.Equal(t, m.Addr, got[0].Addr)

	require.NoError(t, r.Leave(ctx))
	closed(t, r.Done())
	require.Empty(t, listIDs(t, cli, "scheduler"), "Leave removes the key at once")
	require.NoError(t, r.Leave(ctx), "leaving twice is fine")
	require.ErrorIs(t, r.Update(ctx, nil), ErrLeaseLost)
	require.Equal(t, []string{"other"}, listIDs(t, cli, "scheduler2"))
}

// TestLeaseLossJoinsAgain: a member whose lease etcd dropped (it lapsed,
// or was revoked) joins again under a new lease; the registration goes on.
func TestLeaseLossJoinsAgain(t *testing.T) {
	t.Parallel()
	cli := testenv.EtcdClient(t)
	ctx := t.Context()
	r, err := Join(ctx, cli, Member{ID: "n1", Service: "agent"}, time.Second, quiet())
	require.NoError(t, err)
	lost := r.Lease()
	_, err = cli.Revoke(ctx, lost)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		resp, err := cli.Get(ctx, Prefix("agent")+"n1")
		return err == nil && len(resp.Kvs) == 1 && clientv3.LeaseID(resp.Kvs[0].Lease) != lost
	}, waitFor, 10*time.Millisecond, "joined again under a new lease")
	select {
	case <-r.Done():
		t.Fatal("the registration ended")
	default:
	}
	require.NoError(t, r.Update(ctx, map[string]string{"x": "y"}))
	ms, err := List(ctx, cli, "agent")
	require.NoError(t, err)
	require.Equal(t, map[string]string{"x": "y"}, ms[0].Meta)
	require.NoError(t, r.Leave(ctx))
	closed(t, r.Done())
	require.Empty(t, listIDs(t, cli, "agent"))
}

func TestJoinContextEndLeaves(t *testing.T) {
	t.Parallel()
	cli := testenv.EtcdClient(t)
	ctx, cancel := context.WithCancel(t.Context())
	r, err := Join(ctx, cli, Member{ID: "g1", Service: "gateway"}, 5*time.Second, quiet())
	require.NoError(t, err)
	require.Equal(t, []string{"g1"}, listIDs(t, cli, "gateway"))
	cancel()
	closed(t, r.Done())
	require.Empty(t, listIDs(t, cli, "gateway"), "removed without waiting for the TTL")
}

func TestWatch(t *testing.T) {
	t.Parallel()
	endpoints := testenv.Etcd(t)
	cli := testenv.NewEtcdClient(t, endpoints)
	ctx := t.Context()
	watchCtx, stopWatch := context.WithCancel(ctx)
	updates := make(chan []Member, 20)
	done := make(chan error, 1)
	go func() {
		done <- Watch(watchCtx, cli, "registry", func(ms []Member) { updates <- ms })
	}()
	next := func() []Member {
		t.Helper()
		select {
		case ms := <-updates:
			return ms
		case <-time.After(waitFor):
			t.Fatal("no membership update")
			return nil
		}
	}
	require.Empty(t, next(), "initial list")

	a, err := Join(ctx, cli, Member{ID: "a", Service: "registry"}, time.Second, quiet())
	require.NoError(t, err)
	require.Equal(t, []string{"a"}, ids(next()))

	// A member whose client dies disappears after its TTL.
	crashing := testenv.NewEtcdClient(t, endpoints)
	_, err = Join(ctx, crashing, Member{ID: "b", Service: "registry"}, time.Second, quiet())
	require.NoError(t, err)
	require.Equal(t, []string{"a", "b"}, ids(next()))

	// Other services are not reported.
	_, err = Join(ctx, cli, Member{ID: "x", Service: "registry-2"}, time.Second, quiet())
	require.NoError(t, err)

	require.NoError(t, a.Update(ctx, map[string]string{"ready": "true"}))
	ms := next()
	require.Equal(t, []string{"a", "b"}, ids(ms))
	require.Equal(t, "true", ms[0].Meta["ready"])

	require.NoError(t, crashing.Close())
	require.Equal(t, []string{"a"}, ids(next()))

	require.NoError(t, a.Leave(ctx))
	require.Empty(t, next())

	stopWatch()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(waitFor):
		t.Fatal("Watch did not return")
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	cli := testenv.EtcdClient(t)
	tests := []struct {
		name string
		m    Member
	}{
		{"no service", Member{ID: "a"}},
		{"no id", Member{Service: "s"}},
		{"slash in id", Member{Service: "s", ID: "a/b"}},
		{"slash in service", Member{Service: "s/t", ID: "a"}},
	}
	for _, tt := range tests {
		_, err := Join(t.Context(), cli, tt.m, 0, nil)
		require.ErrorIs(t, err, ErrInvalidMember, tt.name)
	}
	_, err := List(t.Context(), cli, "")
	require.ErrorIs(t, err, ErrInvalidMember)
	require.ErrorIs(t, Watch(t.Context(), cli, "a/b", func([]Member) {}), ErrInvalidMember)
	require.Equal(t, int64(5), ttlSeconds(0))
	require.Equal(t, int64(1), ttlSeconds(time.Millisecond))
	require.Equal(t, int64(3), ttlSeconds(2500*time.Millisecond))
}

func TestListSkipsMalformed(t *testing.T) {
	t.Parallel()
	cli := testenv.EtcdClient(t)
	ctx := t.Context()
	_, err := cli.Put(ctx, Prefix("svc")+"bad", "{not json")
	require.NoError(t, err)
	_, err = cli.Put(ctx, Prefix("svc")+"good", `{"id":"ignored","service":"ignored","addr":"h:1"}`)
	require.NoError(t, err)
	ms, err := List(ctx, cli, "svc")
	require.NoError(t, err)
	require.Equal(t, []Member{{ID: "good", Service: "svc", Addr: "h:1"}}, ms)
}

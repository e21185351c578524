//go:build integration

package evaluator

import (
	"encoding/json"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"

	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
	"github.com/bmaas/bmaas/internal/testenv"
	"github.com/bmaas/bmaas/pkg/store"
)

// The auto-evaluation key is claimed by one call at a time, under a lease
// (a dead claimer's claim lapses), given back by a failed try and kept,
// without a lease, by a successful one.
func TestAutoEvaluationClaim(t *testing.T) {
	t.Parallel()
	cli := testenv.EtcdClient(t)
	e := &Evaluator{cfg: DefaultConfig(), cli: cli, st: store.New(cli), log: slog.New(slog.DiscardHandler), now: time.Now}
	ctx := t.Context()
	key := autoKey("m", 1)

	release, done, err := e.claimAuto(ctx, "m", 1)
	require.NoError(t, err)
	require.False(t, done)
	_, _, err = e.claimAuto(ctx, "m", 1)
	require.ErrorIs(t, err, errClaimed)
	release(false)
	resp, err := cli.Get(ctx, key)
	require.NoError(t, err)
	require.Empty(t, resp.Kvs, "a failed try gives the version back")

	_, _, err = e.claimAuto(ctx, "m", 1)
	require.NoError(t, err)
	resp, err = cli.Get(ctx, key)
	require.NoError(t, err)
	require.Len(t, resp.Kvs, 1)
	_, err = cli.Revoke(ctx, clientv3.LeaseID(resp.Kvs[0].Lease)) // the claimer died: its lease lapses
	require.NoError(t, err)

	release, done, err = e.claimAuto(ctx, "m", 1)
	require.NoError(t, err)
	require.False(t, done)
	release(true)
	resp, err = cli.Get(ctx, key)
	require.NoError(t, err)
	require.Len(t, resp.Kvs, 1)
	require.Zero(t, resp.Kvs[0].Lease, "the done mark outlives the claim's lease")
	var m autoMark
	require.NoError(t, json.Unmarshal(resp.Kvs[0].Value, &m))
	require.Equal(t, markDone, m.State)
	_, done, err = e.claimAuto(ctx, "m", 1)
	require.NoError(t, err)
	require.True(t, done)
}

// autoOnce does nothing for a version another call is evaluating (an
// event racing the sweep evaluates nothing twice) or that is done, and a
// failed try leaves the version to the next one.
func TestAutoOnceEvaluatesOnce(t *testing.T) {
	t.Parallel()
	cli := testenv.EtcdClient(t)
	e := &Evaluator{cfg: DefaultConfig(), cli: cli, st: store.New(cli), log: slog.New(slog.DiscardHandler), now: time.Now}
	ctx := t.Context()
	calls := 0
	e.registry = func() (registryv1.RegistryServiceClient, error) {
		calls++
		return nil, errors.New("registry unreachable")
	}

	release, _, err := e.claimAuto(ctx, "m", 2)
	require.NoError(t, err)
	ran, err := e.autoOnce(ctx, "m", 2, "job-1")
	require.NoError(t, err)
	require.False(t, ran)
	require.Zero(t, calls, "a claimed version is not evaluated by a second call")
	release(false)

	ran, err = e.autoOnce(ctx, "m", 2, "job-1")
	require.ErrorContains(t, err, "registry unreachable")
	require.False(t, ran)
	require.Positive(t, calls)
	resp, err := cli.Get(ctx, autoKey("m", 2))
	require.NoError(t, err)
	require.Empty(t, resp.Kvs, "a failed evaluation is tried again later")

	release, _, err = e.claimAuto(ctx, "m", 2)
	require.NoError(t, err)
	release(true)
	calls = 0
	ran, err = e.autoOnce(ctx, "m", 2, "job-1")
	require.NoError(t, err)
	require.False(t, ran)
	require.Zero(t, calls, "a done version is not evaluated again")
}

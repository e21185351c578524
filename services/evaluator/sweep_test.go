//go:build integration

package evaluator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

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

// sweepRegistry serves ListModels and ListModelVersions from memory, one
// item a page, and counts the downloads that evaluations start.
type sweepRegistry struct {
	registryv1.RegistryServiceClient
	models     []*registryv1.Model
	versions   map[string][]*registryv1.ModelVersion
	downloaded []string
}

func page[T any](items []T, token string) ([]T, string) {
	i, _ := strconv.Atoi(token)
	if i >= len(items) {
		return nil, ""
	}
	if i+1 == len(items) {
		return items[i:], ""
	}
	return items[i : i+1], strconv.Itoa(i + 1)
}

func (r *sweepRegistry) ListModels(_ context.Context, req *registryv1.ListModelsRequest, _ ...grpc.CallOption) (*registryv1.ListModelsResponse, error) {
	ms, next := page(r.models, req.PageToken)
	return &registryv1.ListModelsResponse{Models: ms, NextPageToken: next}, nil
}

func (r *sweepRegistry) ListModelVersions(_ context.Context, req *registryv1.ListModelVersionsRequest, _ ...grpc.CallOption) (*registryv1.ListModelVersionsResponse, error) {
	vs, next := page(r.versions[req.Model], req.PageToken)
	return &registryv1.ListModelVersionsResponse{Versions: vs, NextPageToken: next}, nil
}

func (r *sweepRegistry) DownloadModelVersion(_ context.Context, req *registryv1.DownloadModelVersionRequest, _ ...grpc.CallOption) (grpc.ServerStreamingClient[registryv1.DownloadModelVersionResponse], error) {
	r.downloaded = append(r.downloaded, req.Model+"@"+req.Version)
	return nil, status.Error(codes.Unavailable, "registry unreachable")
}

// A sweep tries the READY, NATIVE, job-produced versions without an
// auto-evaluation key, older than one sweep period and younger than the
// horizon, across pages of models and versions, and at most sweepBudget
// of them; a failed try leaves no key, so the next sweep tries again.
func TestSweepAutoPicksMissedVersions(t *testing.T) {
	t.Parallel()
	cli := testenv.EtcdClient(t)
	now := time.Now()
	e := &Evaluator{cfg: DefaultConfig(), cli: cli, st: store.New(cli), log: slog.New(slog.DiscardHandler), now: func() time.Time { return now }}
	ctx := t.Context()
	mk := func(model string, n int64, age time.Duration, mut func(*registryv1.ModelVersion)) *registryv1.ModelVersion {
		v := &registryv1.ModelVersion{Model: model, Version: n, Status: registryv1.VersionStatus_VERSION_STATUS_READY,
			Format: registryv1.ModelFormat_MODEL_FORMAT_NATIVE, Lineage: &registryv1.Lineage{JobId: fmt.Sprintf("job-%s-%d", model, n)},
			CreateTime: timestamppb.New(now.Add(-age))}
		if mut != nil {
			mut(v)
		}
		return v
	}
	old := time.Minute
	reg := &sweepRegistry{versions: map[string][]*registryv1.ModelVersion{
		"a": {
			mk("a", 1, old, nil),
			mk("a", 2, time.Second, nil),            // left to its event
			mk("a", 3, sweepHorizon+time.Hour, nil), // past the horizon
			mk("a", 4, old, func(v *registryv1.ModelVersion) { v.Format = registryv1.ModelFormat_MODEL_FORMAT_ONNX }),
			mk("a", 5, old, func(v *registryv1.ModelVersion) { v.Lineage = nil }), // uploaded, not trained
			mk("a", 6, old, func(v *registryv1.ModelVersion) { v.Status = registryv1.VersionStatus_VERSION_STATUS_FAILED }),
			mk("a", 7, old, nil), // done before
			mk("a", 8, old, nil),
		},
	}}
	reg.models = []*registryv1.Model{{Name: "a", VersionCount: 8}, {Name: "empty"}, {Name: "b", VersionCount: 30}}
	for n := int64(1); n <= 30; n++ {
		reg.versions["b"] = append(reg.versions["b"], mk("b", n, old, nil))
	}
	e.registry = func() (registryv1.RegistryServiceClient, error) { return reg, nil }
	release, _, err := e.claimAuto(ctx, "a", 7)
	require.NoError(t, err)
	release(true)

	n, err := e.SweepAuto(ctx)
	require.NoError(t, err)
	require.Zero(t, n)
	require.Len(t, reg.downloaded, sweepBudget)
	require.Equal(t, []string{"a@1", "a@8", "b@1"}, reg.downloaded[:3])
	keys, err := e.st.Keys(ctx, store.Key("auto-evaluations")+"/")
	require.NoError(t, err)
	require.Equal(t, []string{autoKey("a", 7)}, keys, "failed tries leave no key")

	reg.downloaded = nil
	_, err = e.SweepAuto(ctx)
	require.NoError(t, err)
	require.Equal(t, []string{"a@1", "a@8", "b@1"}, reg.downloaded[:3], "the next sweep tries again")
}

//go:build integration

package gateway

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"

	gatewayv1 "github.com/bmaas/bmaas/api/bmaas/gateway/v1"
	"github.com/bmaas/bmaas/internal/testenv"
	"github.com/bmaas/bmaas/pkg/apierr"
	"github.com/bmaas/bmaas/pkg/store"
)

// TestRuntimesInTheStore: create, get, list (built-ins first, paged),
// a second create, and a delete refused while a deployment uses it.
func TestRuntimesInTheStore(t *testing.T) {
	t.Parallel()
	s := &Service{st: store.New(testenv.EtcdClient(t)), now: time.Now}
	ctx := context.Background()

	r, err := s.CreateRuntime(ctx, torchRuntime())
	require.NoError(t, err)
	require.NotEmpty(t, r.Etag)
	require.False(t, r.Builtin)
	_, err = s.CreateRuntime(ctx, torchRuntime())
	require.Equal(t, codes.AlreadyExists, apierr.Code(err))
	second := torchRuntime()
	second.Name = "a-second"
	_, err = s.CreateRuntime(ctx, second)
	require.NoError(t, err)

	got, err := s.GetRuntime(ctx, "torch-v2")
	require.NoError(t, err)
	require.Equal(t, "/usr/bin/python3", got.GetServer().GetCommand())
	b, err := s.GetRuntime(ctx, "onnx")
	require.NoError(t, err)
	require.True(t, b.Builtin)
	_, err = s.GetRuntime(ctx, "nope")
	require.Equal(t, codes.NotFound, apierr.Code(err))

	var names []string
	token := ""
	for pages := 0; ; pages++ {
		require.Less(t, pages, 10)
		resp, err := s.ListRuntimes(ctx, &gatewayv1.ListRuntimesRequest{PageSize: 1, PageToken: token})
		require.NoError(t, err)
		require.LessOrEqual(t, len(resp.Runtimes), 1)
		for _, r := range resp.Runtimes {
			names = append(names, r.Name)
		}
		if token = resp.NextPageToken; token == "" {
			break
		}
	}
	require.Equal(t, []string{"native", "onnx", "a-second", "torch-v2"}, names)
	all, err := s.ListRuntimes(ctx, &gatewayv1.ListRuntimesRequest{PageSize: 3})
	require.NoError(t, err)
	require.Len(t, all.Runtimes, 3)
	rest, err := s.ListRuntimes(ctx, &gatewayv1.ListRuntimesRequest{PageToken: all.NextPageToken})
	require.NoError(t, err)
	require.Len(t, rest.Runtimes, 1)
	require.Equal(t, "torch-v2", rest.Runtimes[0].Name)
	require.Empty(t, rest.NextPageToken)

	_, err = s.st.Commit(ctx, nil, store.Put(deploymentKey("bc"), &gatewayv1.Deployment{Name: "bc", Runtime: "torch-v2"}))
	require.NoError(t, err)
	_, err = s.st.Commit(ctx, nil, store.Put(deploymentKey("picked"), &gatewayv1.Deployment{Name: "picked",
		Status: &gatewayv1.DeploymentStatus{Runtime: "torch-v2"}}))
	require.NoError(t, err)
	err = s.DeleteRuntime(ctx, "torch-v2")
	require.Equal(t, codes.FailedPrecondition, apierr.Code(err))
	require.Contains(t, err.Error(), "bc, picked")
	require.Equal(t, codes.FailedPrecondition, apierr.Code(s.DeleteRuntime(ctx, "native")))

	require.NoError(t, s.DeleteRuntime(ctx, "a-second"))
	_, err = s.GetRuntime(ctx, "a-second")
	require.Equal(t, codes.NotFound, apierr.Code(err))
	require.Equal(t, codes.NotFound, apierr.Code(s.DeleteRuntime(ctx, "a-second")))
}

// TestRuntimeInUseRacesDelete: a deployment's write that takes a runtime
// (useRuntime) and DeleteRuntime's touch, list and delete exclude each
// other by the runtime's revision, so no deployment is left on a deleted
// runtime.
func TestRuntimeInUseRacesDelete(t *testing.T) {
	t.Parallel()
	s := &Service{st: store.New(testenv.EtcdClient(t)), now: time.Now}
	ctx := context.Background()
	_, err := s.CreateRuntime(ctx, torchRuntime())
	require.NoError(t, err)
	read, err := s.GetRuntime(ctx, "torch-v2")
	require.NoError(t, err)
	dep := &gatewayv1.Deployment{Name: "bc", Status: &gatewayv1.DeploymentStatus{Runtime: "torch-v2"}}

	// A delete touches the runtime after the deployment read it: the
	// deployment's write fails and it reads again.
	touched, err := s.st.Commit(ctx, nil, store.Put(runtimeKey("torch-v2"), torchRuntime()))
	require.NoError(t, err)
	conds, ops := useRuntime(read)
	_, err = s.st.Commit(ctx, conds, append(ops, store.Put(deploymentKey("bc"), dep))...)
	require.True(t, store.IsStale(err), "%v", err)

	// The deployment wins the next round: the delete, which listed no
	// deployment, fails its condition.
	read, err = s.GetRuntime(ctx, "torch-v2")
	require.NoError(t, err)
	conds, ops = useRuntime(read)
	_, err = s.st.Commit(ctx, conds, append(ops, store.Put(deploymentKey("bc"), dep))...)
	require.NoError(t, err)
	_, err = s.st.Commit(ctx, []store.Cond{{Key: runtimeKey("torch-v2"), Rev: touched}}, store.Delete(runtimeKey("torch-v2")))
	require.True(t, store.IsStale(err), "%v", err)
	require.Equal(t, codes.FailedPrecondition, apierr.Code(s.DeleteRuntime(ctx, "torch-v2")))

	got, err := s.GetRuntime(ctx, "torch-v2")
	require.NoError(t, err)
	require.Equal(t, "/usr/bin/python3", got.GetServer().GetCommand(), "a use rewrites the runtime as it was")
	conds, ops = useRuntime(runtimesBuiltin(t, "onnx"))
	require.Empty(t, conds, "a built-in runtime has no record")
	require.Empty(t, ops)
}

func runtimesBuiltin(t *testing.T, name string) *gatewayv1.Runtime {
	t.Helper()
	s := &Service{}
	r, err := s.GetRuntime(context.Background(), name)
	require.NoError(t, err)
	return r
}

//go:build integration

package tests

import (
	"net"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/protobuf/proto"

	gatewayv1 "github.com/bmaas/bmaas/api/bmaas/gateway/v1"
	"github.com/bmaas/bmaas/internal/app"
	"github.com/bmaas/bmaas/pkg/membership"
	"github.com/bmaas/bmaas/services/traineragent/endpointkeys"
	"github.com/bmaas/bmaas/tests/harness"
)

// TestListenOnEveryInterface: a process whose gRPC server listens on
// 0.0.0.0 announces an address others can reach (this machine's own, not
// the unspecified one) for its services and its model-server replicas,
// and serving works through those addresses.
func TestListenOnEveryInterface(t *testing.T) {
	t.Parallel()
	c := harness.Start(t, withFastGateway(), func(cfg *app.Config) { cfg.GRPC.Addr = "0.0.0.0:0" })
	ctx := t.Context()
	cli := c.EtcdClient(t)
	routable := func(addr string) {
		t.Helper()
		host, _, err := net.SplitHostPort(addr)
		require.NoError(t, err, addr)
		ip := net.ParseIP(host)
		require.NotNil(t, ip, addr)
		require.False(t, ip.IsUnspecified(), "announced %s", addr)
	}
	for _, svc := range app.AllTargets {
		ms, err := membership.List(ctx, cli, svc)
		require.NoError(t, err)
		require.Len(t, ms, 1, svc)
		routable(ms[0].Addr)
	}

	servedIris(t, c)
	kvs, err := cli.Get(ctx, endpointkeys.Of("iris"), clientv3.WithPrefix())
	require.NoError(t, err)
	require.Len(t, kvs.Kvs, 1)
	ep := &gatewayv1.Endpoint{}
	require.NoError(t, proto.Unmarshal(kvs.Kvs[0].Value, ep))
	routable(ep.Address)
	routable(ep.LaneAddress)
	code, body := httpDo(t, c, "POST", "/v2/models/iris/infer", map[string]any{"inputs": []any{map[string]any{
		"name": "input", "datatype": "FP64", "shape": []int{1, 4}, "data": []float64{5.1, 3.5, 1.4, 0.2}}}})
	require.Equal(t, http.StatusOK, code, string(body))
}

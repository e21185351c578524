//go:build integration

package tests

import (
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"

	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
	schedulerv1 "github.com/bmaas/bmaas/api/bmaas/scheduler/v1"
	"github.com/bmaas/bmaas/internal/app"
	"github.com/bmaas/bmaas/tests/harness"
)

// join runs another bmaas process with targets on c's etcd and NATS.
func join(t *testing.T, c *harness.Cluster, targets []string, opts ...harness.Option) *harness.Cluster {
	t.Helper()
	cfg := harness.DefaultConfig(t)
	for _, o := range opts {
		o(&cfg)
	}
	cfg.Embedded = false
	cfg.Targets = targets
	cfg.EtcdEndpoints, cfg.NATSURL = c.Addrs.EtcdEndpoints, c.Addrs.NATSURL
	cfg.Etcd, cfg.NATS = c.Addrs.Etcd, c.Addrs.NATS
	return harness.StartConfig(t, cfg)
}

// TestAnyProcessAnswersForEveryService: a process that runs only the
// scheduler forwards the calls of the other services to the processes
// that run them: over gRPC (unary, client and server streaming, errors
// with their status), over REST, and KServe v2 REST.
func TestAnyProcessAnswersForEveryService(t *testing.T) {
	t.Parallel()
	c1 := harness.Start(t)
	c2 := join(t, c1, []string{app.TargetScheduler})
	ctx := t.Context()
	reg := registryv1.NewRegistryServiceClient(c2.Conn)

	// Unary, through the scheduler-only process.
	_, err := reg.CreateModel(ctx, &registryv1.CreateModelRequest{Model: &registryv1.Model{Name: "proxied"}})
	require.NoError(t, err)
	got, err := c1.Registry.GetModel(ctx, &registryv1.GetModelRequest{Name: "proxied"})
	require.NoError(t, err, "created through the proxy, read at the registry")
	require.Equal(t, "proxied", got.Model.Name)

	// Client streaming up, server streaming down: 3 MiB in 1 MiB chunks.
	v, digest, err := streamUpload(ctx, reg, "proxied", 3<<20, 9, nil)
	require.NoError(t, err)
	require.Equal(t, int64(1), v.Version)
	require.Equal(t, digest, downloadDigest(t, reg, "proxied", "1"))

	// The service's errors come back with their code and message.
	_, err = reg.GetModel(ctx, &registryv1.GetModelRequest{Name: "nope"})
	require.Equal(t, codes.NotFound, status.Code(err), "%v", err)
	require.Contains(t, status.Convert(err).Message(), "nope")

	// A method of a service the process runs, unknown to it: no forwarding.
	err = c2.Conn.Invoke(ctx, "/"+schedulerv1.SchedulerService_ServiceDesc.ServiceName+"/NoSuchMethod", &emptypb.Empty{}, &emptypb.Empty{})
	require.Equal(t, codes.Unimplemented, status.Code(err), "%v", err)

	// REST and the raw bytes on the scheduler-only process reach the
	// registry too.
	code, body := httpDo(t, c2, "GET", "/v1/models/proxied", nil)
	require.Equal(t, 200, code, string(body))
	require.Contains(t, string(body), `"name":"proxied"`)
	code, body = httpDo(t, c2, "GET", "/v1/models/proxied/versions/1/artifact", nil)
	require.Equal(t, 200, code)
	require.Len(t, body, 3<<20)

	// KServe v2 REST on the process without a gateway: the calls go to the
	// gateway over gRPC.
	servedIris(t, c1)
	code, body = httpDo(t, c2, "GET", "/v2/models/iris/ready", nil)
	require.Equal(t, 200, code, string(body))
	code, body = httpDo(t, c2, "POST", "/v2/models/iris/infer", map[string]any{"inputs": []any{map[string]any{
		"name": "input", "datatype": "FP64", "shape": []int{1, 4}, "data": []float64{5.1, 3.5, 1.4, 0.2}}}})
	require.Equal(t, 200, code, string(body))
	require.Contains(t, string(body), `"name":"probabilities"`)
	code, body = httpDo(t, c2, "POST", "/v1/models/iris:predict", map[string]any{"instances": [][]float64{{5.1, 3.5, 1.4, 0.2}}})
	require.Equal(t, 200, code, string(body))
	require.Contains(t, string(body), `"predictions":[`)
	code, body = httpDo(t, c2, "GET", "/v2/models/nope", nil)
	require.Equal(t, 404, code, string(body))

	// A call the mesh forwarded once already is not forwarded again.
	once := metadata.AppendToOutgoingContext(ctx, "bmaas-proxied", "1")
	_, err = reg.ListModels(once, &registryv1.ListModelsRequest{})
	require.Equal(t, codes.Unavailable, status.Code(err), "%v", err)
}

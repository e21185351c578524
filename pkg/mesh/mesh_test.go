//go:build integration

package mesh

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	agentv1 "github.com/bmaas/bmaas/api/bmaas/agent/v1"
	"github.com/bmaas/bmaas/internal/testenv"
	"github.com/bmaas/bmaas/pkg/grpcsrv"
	"github.com/bmaas/bmaas/pkg/membership"
)

type agent struct {
	agentv1.UnimplementedAgentServiceServer
	node string
}

func (a agent) GetAgentStatus(context.Context, *agentv1.GetAgentStatusRequest) (*agentv1.GetAgentStatusResponse, error) {
	return &agentv1.GetAgentStatusResponse{Node: a.node}, nil
}

func serve(t *testing.T, node string) string {
	t.Helper()
	s, err := grpcsrv.New(grpcsrv.Config{Addr: "127.0.0.1:0", MaxRecvMsgBytes: 1 << 20}, grpcsrv.Deps{})
	require.NoError(t, err)
	agentv1.RegisterAgentServiceServer(s.GRPC(), agent{node: node})
	go func() { _ = s.Serve() }()
	t.Cleanup(func() { s.Shutdown(context.Background()) })
	return s.Addr()
}

func TestDialFollowsMembership(t *testing.T) {
	t.Parallel()
	cli := testenv.EtcdClient(t)
	ctx := t.Context()
	d := NewDialer(cli, "", nil)
	t.Cleanup(d.Close)
	conn, err := d.Conn("trainer-agent")
	require.NoError(t, err)
	c := agentv1.NewAgentServiceClient(conn)

	// No replica yet: a short call fails as Unavailable instead of hanging.
	sctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	_, err = c.GetAgentStatus(sctx, &agentv1.GetAgentStatusRequest{})
	cancel()
	require.Contains(t, []codes.Code{codes.Unavailable, codes.DeadlineExceeded}, status.Code(err))

	a := serve(t, "a")
	reg, err := membership.Join(ctx, cli, membership.Member{ID: "a", Service: "trainer-agent", Addr: a}, 2*time.Second, nil)
	require.NoError(t, err)
	resp, err := c.GetAgentStatus(ctx, &agentv1.GetAgentStatusRequest{}, grpc.WaitForReady(true))
	require.NoError(t, err)
	require.Equal(t, "a", resp.Node)

	// A second replica joins and the first leaves: calls move over.
	b := serve(t, "b")
	_, err = membership.Join(ctx, cli, membership.Member{ID: "b", Service: "trainer-agent", Addr: b}, 2*time.Second, nil)
	require.NoError(t, err)
	require.NoError(t, reg.Leave(ctx))
	require.Eventually(t, func() bool {
		resp, err := c.GetAgentStatus(ctx, &agentv1.GetAgentStatusRequest{}, grpc.WaitForReady(true))
		return err == nil && resp.Node == "b"
	}, 10*time.Second, 10*time.Millisecond)
}

// flaky refuses its first calls as UNAVAILABLE, as a stopping replica
// does.
type flaky struct {
	agentv1.UnimplementedAgentServiceServer
	refuse atomic.Int32
	calls  atomic.Int32
	fail   atomic.Bool
}

func (f *flaky) GetAgentStatus(context.Context, *agentv1.GetAgentStatusRequest) (*agentv1.GetAgentStatusResponse, error) {
	f.calls.Add(1)
	if f.fail.Load() {
		return nil, status.Error(codes.FailedPrecondition, "no")
	}
	if f.refuse.Add(-1) >= 0 {
		return nil, status.Error(codes.Unavailable, "stopping")
	}
	return &agentv1.GetAgentStatusResponse{Node: "f"}, nil
}

// TestTypedClientRetriesUnavailableAndCounts: a typed client reaches its
// service by the name the mesh owns, a call refused as UNAVAILABLE is
// tried again by the one retry policy, and every call is counted by
// service, method and code; other codes are not retried.
func TestTypedClientRetriesUnavailableAndCounts(t *testing.T) {
	t.Parallel()
	cli := testenv.EtcdClient(t)
	ctx := t.Context()
	s, err := grpcsrv.New(grpcsrv.Config{Addr: "127.0.0.1:0", MaxRecvMsgBytes: 1 << 20}, grpcsrv.Deps{})
	require.NoError(t, err)
	f := &flaky{}
	f.refuse.Store(2)
	agentv1.RegisterAgentServiceServer(s.GRPC(), f)
	go func() { _ = s.Serve() }()
	t.Cleanup(func() { s.Shutdown(context.Background()) })
	_, err = membership.Join(ctx, cli, membership.Member{ID: "f", Service: TrainerAgentService, Addr: s.Addr()}, 2*time.Second, nil)
	require.NoError(t, err)

	reg := prometheus.NewRegistry()
	d, err := NewDialer(cli, "", nil).WithMetrics(reg)
	require.NoError(t, err)
	t.Cleanup(d.Close)
	c, err := d.TrainerAgent()
	require.NoError(t, err)
	resp, err := c.GetAgentStatus(ctx, &agentv1.GetAgentStatusRequest{}, grpc.WaitForReady(true))
	require.NoError(t, err)
	require.Equal(t, "f", resp.Node)
	require.EqualValues(t, 3, f.calls.Load(), "two refusals, then the answer")
	method := agentv1.AgentService_GetAgentStatus_FullMethodName
	require.InDelta(t, 1, testutil.ToFloat64(d.met.requests.WithLabelValues(TrainerAgentService, method, "OK")), 0)

	// Another code is an answer, not a refusal: one attempt.
	f.fail.Store(true)
	_, err = c.GetAgentStatus(ctx, &agentv1.GetAgentStatusRequest{}, grpc.WaitForReady(true))
	require.Equal(t, codes.FailedPrecondition, status.Code(err))
	require.EqualValues(t, 4, f.calls.Load())
	require.InDelta(t, 1, testutil.ToFloat64(d.met.requests.WithLabelValues(TrainerAgentService, method, "FailedPrecondition")), 0)
}

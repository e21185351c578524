package grpcsrv

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	agentv1 "github.com/bmaas/bmaas/api/bmaas/agent/v1"
	"github.com/bmaas/bmaas/pkg/apierr"
)

// agent answers according to the node name it was built with.
type agent struct {
	agentv1.UnimplementedAgentServiceServer
	mode string
}

func (a agent) GetAgentStatus(context.Context, *agentv1.GetAgentStatusRequest) (*agentv1.GetAgentStatusResponse, error) {
	switch a.mode {
	case "panic":
		panic("boom")
	case "invalid":
		return nil, apierr.Invalid("node", "bad name")
	case "internal":
		return nil, os.ErrPermission
	}
	return &agentv1.GetAgentStatusResponse{Node: "n1"}, nil
}

func start(t *testing.T, mode, tokenFile string, reg *prometheus.Registry) agentv1.AgentServiceClient {
	t.Helper()
	s, err := New(Config{Addr: "127.0.0.1:0", TokenFile: tokenFile, MaxRecvMsgBytes: 1 << 20}, Deps{Registerer: reg})
	require.NoError(t, err)
	agentv1.RegisterAgentServiceServer(s.GRPC(), agent{mode: mode})
	s.SetServing(agentv1.AgentService_ServiceDesc.ServiceName, true)
	go func() { _ = s.Serve() }()
	t.Cleanup(func() { s.Shutdown(context.Background()) })
	conn, err := grpc.NewClient(s.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	hc := healthpb.NewHealthClient(conn)
	resp, err := hc.Check(t.Context(), &healthpb.HealthCheckRequest{Service: agentv1.AgentService_ServiceDesc.ServiceName})
	require.NoError(t, err)
	require.Equal(t, healthpb.HealthCheckResponse_SERVING, resp.Status)
	return agentv1.NewAgentServiceClient(conn)
}

func TestInterceptorChain(t *testing.T) {
	t.Parallel()
	tests := []struct {
		mode string
		code codes.Code
		msg  string
	}{
		{"ok", codes.OK, ""},
		{"panic", codes.Internal, "internal error"},
		{"invalid", codes.InvalidArgument, "node: bad name"},
		{"internal", codes.Internal, "internal error"},
	}
	for _, tc := range tests {
		t.Run(tc.mode, func(t *testing.T) {
			t.Parallel()
			reg := prometheus.NewRegistry()
			c := start(t, tc.mode, "", reg)
			_, err := c.GetAgentStatus(t.Context(), &agentv1.GetAgentStatusRequest{})
			s := status.Convert(err)
			require.Equal(t, tc.code, s.Code())
			if tc.msg != "" {
				require.Equal(t, tc.msg, s.Message())
			}
			n := testutil.ToFloat64(mustCounter(t, reg, tc.code))
			require.Equal(t, 1.0, n)
		})
	}
}

func mustCounter(t *testing.T, reg *prometheus.Registry, code codes.Code) prometheus.Collector {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != "bmaas_grpc_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "code" && l.GetValue() == code.String() {
					c := prometheus.NewCounter(prometheus.CounterOpts{Name: "x"})
					c.Add(m.GetCounter().GetValue())
					return c
				}
			}
		}
	}
	t.Fatalf("no request counted with code %s", code)
	return nil
}

func TestBearerToken(t *testing.T) {
	t.Parallel()
	tf := filepath.Join(t.TempDir(), "token")
	require.NoError(t, os.WriteFile(tf, []byte("s3cret\n"), 0o600))
	c := start(t, "ok", tf, prometheus.NewRegistry())

	_, err := c.GetAgentStatus(t.Context(), &agentv1.GetAgentStatusRequest{})
	require.Equal(t, codes.Unauthenticated, status.Code(err))

	bad := metadata.AppendToOutgoingContext(t.Context(), "authorization", "Bearer nope")
	_, err = c.GetAgentStatus(bad, &agentv1.GetAgentStatusRequest{})
	require.Equal(t, codes.Unauthenticated, status.Code(err))

	good := metadata.AppendToOutgoingContext(t.Context(), "authorization", "Bearer s3cret")
	resp, err := c.GetAgentStatus(good, &agentv1.GetAgentStatusRequest{})
	require.NoError(t, err)
	require.Equal(t, "n1", resp.Node)
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	_, err := New(Config{Addr: "nonsense", MaxRecvMsgBytes: 1}, Deps{})
	require.ErrorContains(t, err, "grpc-addr")
	_, err = New(Config{Addr: "127.0.0.1:0", MaxRecvMsgBytes: 1, TokenFile: "/does/not/exist"}, Deps{})
	require.ErrorContains(t, err, "auth.token-file")
}

package grpcsrv

import (
	"context"
	"fmt"
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
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"

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
	return agentv1.NewAgentServiceClient(startConn(t, mode, tokenFile, reg))
}

func startConn(t *testing.T, mode, tokenFile string, reg *prometheus.Registry) *grpc.ClientConn {
	t.Helper()
	// As in the app, calls of services the server lacks reach a handler
	// (there, the mesh's proxy) through the interceptors.
	unknown := func(any, grpc.ServerStream) error { return status.Error(codes.Unimplemented, "no such service") }
	s, err := New(Config{Addr: "127.0.0.1:0", TokenFile: tokenFile, MaxRecvMsgBytes: 1 << 20}, Deps{Registerer: reg, UnknownService: unknown})
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
	return conn
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

// TestBearerSchemeCaseInsensitive: RFC 7235 auth schemes are
// case-insensitive, so "bearer" and "BEARER" carry the token as well.
func TestBearerSchemeCaseInsensitive(t *testing.T) {
	t.Parallel()
	tf := filepath.Join(t.TempDir(), "token")
	require.NoError(t, os.WriteFile(tf, []byte("s3cret\n"), 0o600))
	c := start(t, "ok", tf, prometheus.NewRegistry())
	for _, v := range []string{"bearer s3cret", "BEARER s3cret", "Bearer  s3cret"} {
		ctx := metadata.AppendToOutgoingContext(t.Context(), "authorization", v)
		_, err := c.GetAgentStatus(ctx, &agentv1.GetAgentStatusRequest{})
		require.NoError(t, err, v)
	}
	for _, v := range []string{"Basic s3cret", "Bearers3cret", "s3cret", "Bearer s3cret x"} {
		ctx := metadata.AppendToOutgoingContext(t.Context(), "authorization", v)
		_, err := c.GetAgentStatus(ctx, &agentv1.GetAgentStatusRequest{})
		require.Equal(t, codes.Unauthenticated, status.Code(err), v)
	}
}

// TestUnknownMethodsShareOneLabel: calls with made-up method names, from
// a caller without a token, must not grow the metrics.
func TestUnknownMethodsShareOneLabel(t *testing.T) {
	t.Parallel()
	tf := filepath.Join(t.TempDir(), "token")
	require.NoError(t, os.WriteFile(tf, []byte("s3cret\n"), 0o600))
	reg := prometheus.NewRegistry()
	cc := startConn(t, "ok", tf, reg)
	series := func() int {
		mfs, err := reg.Gather()
		require.NoError(t, err)
		n := 0
		for _, mf := range mfs {
			n += len(mf.GetMetric())
		}
		return n
	}
	for i := range 500 {
		method := fmt.Sprintf("/svc%d.Service/Method%d", i, i)
		err := cc.Invoke(t.Context(), method, &emptypb.Empty{}, &emptypb.Empty{})
		require.Error(t, err)
	}
	before := series()
	for i := range 500 {
		err := cc.Invoke(t.Context(), fmt.Sprintf("/x%d.Y/Z%d", i, i), &emptypb.Empty{}, &emptypb.Empty{})
		require.Error(t, err)
	}
	require.Equal(t, before, series(), "metrics grew with unknown method names")
	require.Less(t, before, 10)
}

// TestMalformedRequestIsInvalidArgument: bytes that are not the method's
// message are the caller's mistake, not an internal error.
func TestMalformedRequestIsInvalidArgument(t *testing.T) {
	t.Parallel()
	cc := startConn(t, "ok", "", prometheus.NewRegistry())
	c := agentv1.NewAgentServiceClient(cc)
	garbage := FrameOf(mem.SliceBuffer([]byte{0xff, 0xff, 0xff, 0xff, 0x0f}))
	var out RawFrame
	err := cc.Invoke(t.Context(), "/bmaas.agent.v1.AgentService/GetAgentStatus", garbage, &out, grpc.ForceCodecV2(NewCodec()))
	require.Equal(t, codes.InvalidArgument, status.Code(err), err)
	require.Contains(t, status.Convert(err).Message(), "request")
	// A streaming call's request too (the health service's Watch).
	st, err := cc.NewStream(t.Context(), &grpc.StreamDesc{ServerStreams: true}, "/grpc.health.v1.Health/Watch", grpc.ForceCodecV2(NewCodec()))
	require.NoError(t, err)
	require.NoError(t, st.SendMsg(FrameOf(mem.SliceBuffer([]byte{0x0a, 0x05, 0xff, 0xfe, 0xfd, 0xfc, 0xfb}))))
	require.NoError(t, st.CloseSend())
	err = st.RecvMsg(&out)
	require.Equal(t, codes.InvalidArgument, status.Code(err), err)
	// The next well-formed call is unaffected.
	_, err = c.GetAgentStatus(t.Context(), &agentv1.GetAgentStatusRequest{})
	require.NoError(t, err)
}

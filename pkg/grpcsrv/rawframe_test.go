package grpcsrv

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	agentv1 "github.com/bmaas/bmaas/api/bmaas/agent/v1"
	"github.com/bmaas/bmaas/api/inference"
)

func TestScanStrings(t *testing.T) {
	t.Parallel()
	full, err := proto.Marshal(&inference.ModelInferRequest{ModelName: "iris", ModelVersion: "3", Id: "x",
		Inputs: []*inference.ModelInferRequest_InferInputTensor{{Name: "input", Shape: []int64{1, 4}}}})
	require.NoError(t, err)
	// Fields in any order, and a repeated one: the last wins.
	var shuffled []byte
	shuffled = protowire.AppendTag(shuffled, 5, protowire.BytesType)
	shuffled = protowire.AppendBytes(shuffled, []byte{0x0a, 0x01, 'a'})
	shuffled = protowire.AppendTag(shuffled, 2, protowire.BytesType)
	shuffled = protowire.AppendString(shuffled, "7")
	shuffled = protowire.AppendTag(shuffled, 1, protowire.BytesType)
	shuffled = protowire.AppendString(shuffled, "old")
	shuffled = protowire.AppendTag(shuffled, 1, protowire.BytesType)
	shuffled = protowire.AppendString(shuffled, "new")
	for _, tc := range []struct {
		name        string
		msg         []byte
		model, vers string
		wantErr     bool
	}{
		{name: "full", msg: full, model: "iris", vers: "3"},
		{name: "empty", msg: nil},
		{name: "shuffled", msg: shuffled, model: "new", vers: "7"},
		{name: "truncated", msg: full[:len(full)-2], wantErr: true},
		{name: "bad tag", msg: []byte{0xff}, wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			model, vers, err := ScanStrings(tc.msg, 1, 2)
			if tc.wantErr {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.model, model)
			require.Equal(t, tc.vers, vers)
		})
	}
}

func TestCodecFrameResent(t *testing.T) {
	t.Parallel()
	c := NewCodec()
	want := []byte("raw bytes")
	in := mem.BufferSlice{mem.NewBuffer(&want, nil)}
	f := new(RawFrame)
	require.NoError(t, c.Unmarshal(in, f))
	in.Free()     // grpc frees its reference after Unmarshal
	for range 2 { // a retry sends the frame again
		out, err := c.Marshal(f)
		require.NoError(t, err)
		require.Equal(t, want, out.Materialize())
		out.Free() // grpc frees its reference after writing
	}
	require.Equal(t, want, f.Bytes())
	f.Free()
	// Any other message goes through the proto codec.
	out, err := c.Marshal(&agentv1.GetAgentStatusResponse{Node: "n1"})
	require.NoError(t, err)
	var got agentv1.GetAgentStatusResponse
	require.NoError(t, c.Unmarshal(out, &got))
	require.Equal(t, "n1", got.Node)
}

// TestRawFrameProxy forwards GetAgentStatus without decoding it: the
// proxy's handler takes a frame and returns the backend's frame.
func TestRawFrameProxy(t *testing.T) {
	t.Parallel()
	backend := serveForTest(t, func(s *Server) { agentv1.RegisterAgentServiceServer(s.GRPC(), agent{}) })
	desc := agentv1.AgentService_ServiceDesc
	desc.Methods = []grpc.MethodDesc{{MethodName: "GetAgentStatus",
		Handler: func(_ any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
			req := new(RawFrame)
			if err := dec(req); err != nil {
				return nil, err
			}
			defer req.Free()
			resp := new(RawFrame)
			err := backend.Invoke(ctx, agentv1.AgentService_GetAgentStatus_FullMethodName, req, resp,
				grpc.ForceCodecV2(NewCodec()))
			return resp, err
		}}}
	desc.Streams = nil
	conn := serveForTest(t, func(s *Server) { s.GRPC().RegisterService(&desc, nil) })
	for range 3 {
		resp, err := agentv1.NewAgentServiceClient(conn).GetAgentStatus(t.Context(), &agentv1.GetAgentStatusRequest{})
		require.NoError(t, err)
		require.Equal(t, "n1", resp.Node)
	}
}

// serveForTest starts a server with what register adds and dials it.
func serveForTest(t *testing.T, register func(*Server)) *grpc.ClientConn {
	t.Helper()
	s, err := New(Config{Addr: "127.0.0.1:0", MaxRecvMsgBytes: 1 << 20}, Deps{})
	require.NoError(t, err)
	register(s)
	go func() { _ = s.Serve() }()
	t.Cleanup(func() { s.Shutdown(context.Background()) })
	conn, err := grpc.NewClient(s.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

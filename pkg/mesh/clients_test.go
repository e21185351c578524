//go:build integration

package mesh

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"

	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
	"github.com/bmaas/bmaas/internal/testenv"
	"github.com/bmaas/bmaas/pkg/grpcsrv"
	"github.com/bmaas/bmaas/pkg/membership"
)

// chunks streams two chunks for any download.
type chunks struct {
	registryv1.UnimplementedRegistryServiceServer
}

func (chunks) DownloadModelVersion(_ *registryv1.DownloadModelVersionRequest,
	s grpc.ServerStreamingServer[registryv1.DownloadModelVersionResponse]) error {
	for _, b := range []string{"ab", "cd"} {
		if err := s.Send(&registryv1.DownloadModelVersionResponse{
			Payload: &registryv1.DownloadModelVersionResponse_Chunk{Chunk: []byte(b)}}); err != nil {
			return err
		}
	}
	return nil
}

// TestTypedClientStreamsEndAndAreCounted: a counted stream gives its
// messages and then io.EOF, nothing more, and is counted once as OK.
func TestTypedClientStreamsEndAndAreCounted(t *testing.T) {
	t.Parallel()
	cli := testenv.EtcdClient(t)
	ctx := t.Context()
	s, err := grpcsrv.New(grpcsrv.Config{Addr: "127.0.0.1:0", MaxRecvMsgBytes: 1 << 20}, grpcsrv.Deps{})
	require.NoError(t, err)
	registryv1.RegisterRegistryServiceServer(s.GRPC(), chunks{})
	go func() { _ = s.Serve() }()
	t.Cleanup(func() { s.Shutdown(context.Background()) })
	_, err = membership.Join(ctx, cli, membership.Member{ID: "r", Service: RegistryService, Addr: s.Addr()}, 2*time.Second, nil)
	require.NoError(t, err)
	d, err := NewDialer(cli, "", nil).WithMetrics(prometheus.NewRegistry())
	require.NoError(t, err)
	t.Cleanup(d.Close)
	c, err := d.Registry()
	require.NoError(t, err)
	st, err := c.DownloadModelVersion(ctx, &registryv1.DownloadModelVersionRequest{Model: "m", Version: "1"}, grpc.WaitForReady(true))
	require.NoError(t, err)
	var got []string
	for {
		m, err := st.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		got = append(got, string(m.GetChunk()))
	}
	require.Equal(t, []string{"ab", "cd"}, got, "no empty message at the end")
	_, err = st.Recv()
	require.ErrorIs(t, err, io.EOF, "an ended stream stays ended")
	require.InDelta(t, 1, testutil.ToFloat64(d.met.requests.WithLabelValues(RegistryService,
		registryv1.RegistryService_DownloadModelVersion_FullMethodName, "OK")), 0)
}

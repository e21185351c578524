package testenv

import (
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

func TestServeAnswersOnLoopback(t *testing.T) {
	t.Parallel()
	registered := false
	conn := Serve(t, func(*grpc.Server) { registered = true })
	require.True(t, registered)
	require.Regexp(t, `^127\.0\.0\.1:\d+$`, conn.Target())
	// grpcsrv's own health service answers through the connection.
	_, err := healthpb.NewHealthClient(conn).Check(t.Context(), &healthpb.HealthCheckRequest{})
	require.NoError(t, err)
}

func TestBufferKeepsConcurrentWrites(t *testing.T) {
	t.Parallel()
	var b Buffer
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 100 {
				_, _ = fmt.Fprintf(&b, "w%d-%d\n", i, j)
			}
		})
	}
	wg.Wait()
	require.Len(t, b.String(), 8*100*len("wX-YY\n")-8*10)
	require.True(t, b.Contains("w7-99\n"))
	require.False(t, b.Contains("w8-0\n"))
}

package traineragent

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"

	"github.com/bmaas/bmaas/api/inference"
	"github.com/bmaas/bmaas/pkg/runtimes"
)

func fastProbe(path string) runtimes.Probe {
	return runtimes.Probe{HTTPPath: path, Period: 5 * time.Millisecond, Timeout: time.Second, StartupTimeout: 10 * time.Second}
}

// A probe passes on the first 2xx answer, after the server answered 503
// while it loaded, and sends the replica's token.
func TestHTTPProbePassesOnceTheServerAnswers2xx(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	var auth atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth.Store(r.Header.Get("Authorization"))
		if r.URL.Path != "/v2/health/ready" || calls.Add(1) < 3 {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	t.Cleanup(srv.Close)
	check := httpCheck(srv.Client(), strings.TrimPrefix(srv.URL, "http://"), "/v2/health/ready", "tok")
	require.NoError(t, awaitReadiness(context.Background(), fastProbe("/v2/health/ready"), check, nil))
	require.EqualValues(t, 3, calls.Load())
	require.Equal(t, "Bearer tok", auth.Load())
}

// A probe that never passes fails after the startup timeout, saying the
// request and the last answer.
func TestHTTPProbeThatNeverPassesSaysTheLastAnswer(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(srv.Close)
	p := fastProbe("/nope")
	p.StartupTimeout = 50 * time.Millisecond
	err := awaitReadiness(context.Background(), p, httpCheck(srv.Client(), strings.TrimPrefix(srv.URL, "http://"), "/nope", ""), nil)
	require.EqualError(t, err, "readiness probe GET /nope: 404 Not Found after 50ms")
}

// A server that exits while probed ends the wait at once.
func TestProbeStopsWhenTheServerExits(t *testing.T) {
	t.Parallel()
	exited := make(chan struct{})
	close(exited)
	never := func(context.Context) error { return errors.New("connection refused") }
	err := awaitReadiness(context.Background(), fastProbe("/"), never, exited)
	require.ErrorIs(t, err, errServerExited)
}

// The initial delay comes before the first probe; a startup timeout that
// ends within it fails without a probe.
func TestProbeInitialDelayCountsAgainstTheStartupTimeout(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	check := func(context.Context) error { calls.Add(1); return nil }
	p := fastProbe("/")
	p.InitialDelay, p.StartupTimeout = time.Hour, 20*time.Millisecond
	err := awaitReadiness(context.Background(), p, check, nil)
	require.ErrorContains(t, err, "readiness probe GET /: no answer yet after 20ms")
	require.Zero(t, calls.Load())
}

// A probe ends with its context.
func TestProbeEndsWithTheTask(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	never := func(context.Context) error { return errors.New("refused") }
	require.ErrorIs(t, awaitReadiness(ctx, fastProbe("/"), never, nil), context.Canceled)
}

type readyServer struct {
	inference.UnimplementedGRPCInferenceServiceServer
	calls atomic.Int32
}

func (s *readyServer) ServerReady(context.Context, *inference.ServerReadyRequest) (*inference.ServerReadyResponse, error) {
	return &inference.ServerReadyResponse{Ready: s.calls.Add(1) >= 2}, nil
}

// A gRPC probe passes once ServerReady says ready.
func TestGRPCProbeWaitsForServerReady(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	gs := grpc.NewServer()
	rs := &readyServer{}
	inference.RegisterGRPCInferenceServiceServer(gs, rs)
	go func() { _ = gs.Serve(l) }()
	t.Cleanup(gs.Stop)
	conn, err := dialProbe(l.Addr().String())
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	p := fastProbe("")
	p.GRPC = true
	require.NoError(t, awaitReadiness(context.Background(), p, grpcCheck(conn, "tok"), nil))
	require.EqualValues(t, 2, rs.calls.Load())
	require.Equal(t, "gRPC ServerReady", probeName(p))
}

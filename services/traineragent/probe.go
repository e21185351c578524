package traineragent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/bmaas/bmaas/api/inference"
	"github.com/bmaas/bmaas/pkg/runtimes"
)

// readinessCheck is one try of a readiness probe: nil when the server is
// ready, else what it answered.
type readinessCheck func(ctx context.Context) error

// httpCheck probes GET path on addr (host:port): ready on a 2xx answer.
// It sends the replica's token as the gateway does.
func httpCheck(client *http.Client, addr, path, token string) readinessCheck {
	url := "http://" + addr + path
	return func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		_ = resp.Body.Close()
		if resp.StatusCode < 200 || resp.StatusCode > 299 {
			return errors.New(resp.Status)
		}
		return nil
	}
}

// grpcCheck probes the KServe v2 ServerReady call on conn.
func grpcCheck(conn grpc.ClientConnInterface, token string) readinessCheck {
	c := inference.NewGRPCInferenceServiceClient(conn)
	return func(ctx context.Context) error {
		if token != "" {
			ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
		}
		r, err := c.ServerReady(ctx, &inference.ServerReadyRequest{})
		if err != nil {
			return err
		}
		if !r.GetReady() {
			return errors.New("not ready")
		}
		return nil
	}
}

// dialProbe opens the plain gRPC connection a gRPC probe calls on; it
// connects lazily, so a server still starting is no error here.
func dialProbe(addr string) (*grpc.ClientConn, error) {
	return grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
}

// probeName says what a probe asks, for messages: "GET /v2/health/ready"
// or "gRPC ServerReady".
func probeName(p runtimes.Probe) string {
	if p.GRPC {
		return "gRPC ServerReady"
	}
	return "GET " + p.HTTPPath
}

// errServerExited: the server ended while its probe waited.
var errServerExited = errors.New("the server exited before it was ready")

// awaitReadiness runs check as p says: after the initial delay, every
// period, each try within the probe's timeout, until one passes (nil),
// the startup timeout passes (an error saying the last answer:
// "readiness probe GET /nope: 404 Not Found after 30s"), the server
// exits (errServerExited) or ctx ends.
func awaitReadiness(ctx context.Context, p runtimes.Probe, check readinessCheck, exited <-chan struct{}) error {
	deadline := time.NewTimer(p.StartupTimeout)
	defer deadline.Stop()
	wait := func(d time.Duration) error {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
			return nil
		case <-exited:
			return errServerExited
		case <-ctx.Done():
			return ctx.Err()
		case <-deadline.C:
			return errProbeDeadline
		}
	}
	last := errors.New("no answer yet")
	fail := func() error {
		return fmt.Errorf("readiness probe %s: %v after %s", probeName(p), last, p.StartupTimeout)
	}
	if err := wait(p.InitialDelay); err != nil {
		if errors.Is(err, errProbeDeadline) {
			return fail()
		}
		return err
	}
	for {
		tctx, cancel := context.WithTimeout(ctx, p.Timeout)
		err := check(tctx)
		cancel()
		if err == nil {
			return nil
		}
		last = err
		if err := wait(p.Period); err != nil {
			if errors.Is(err, errProbeDeadline) {
				return fail()
			}
			return err
		}
	}
}

var errProbeDeadline = errors.New("startup timeout")

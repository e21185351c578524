package lane

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// start serves h on a loopback port and returns a client of it.
func start(t *testing.T, h Handler) (*Server, *Client) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := NewServer(h)
	go func() { _ = s.Serve(lis) }()
	c := NewClient(lis.Addr().String(), "")
	t.Cleanup(func() { _ = c.Close(); s.Close() })
	return s, c
}

// reverse answers the request reversed, after "method:".
func reverse(_ context.Context, m Method, req, out []byte) ([]byte, error) {
	out = append(out, fmt.Sprintf("%d:", m)...)
	for i := len(req) - 1; i >= 0; i-- {
		out = append(out, req[i])
	}
	return out, nil
}

func TestConcurrentCallsGetTheirOwnAnswers(t *testing.T) {
	_, c := start(t, reverse)
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 100 {
				// Sizes from empty to past the readers' 64 KiB buffers.
				req := bytes.Repeat([]byte{byte(g), byte(i)}, (g*997+i*131)%40000)
				req = append(req, fmt.Sprintf("/%d/%d", g, i)...)
				resp, err := c.Call(context.Background(), MethodModelInfer, req)
				if err != nil {
					errs <- err
					return
				}
				want, _ := reverse(context.Background(), MethodModelInfer, req, nil)
				if !bytes.Equal(resp.ReadOnlyData(), want) {
					errs <- fmt.Errorf("call %d/%d: answer of %d bytes is not its own", g, i, resp.Len())
				}
				resp.Free()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

func TestErrorsKeepTheirStatus(t *testing.T) {
	_, c := start(t, func(_ context.Context, _ Method, req, out []byte) ([]byte, error) {
		switch string(req) {
		case "invalid":
			st, _ := status.New(codes.InvalidArgument, "input: shape [1 3] does not match [-1 4]").WithDetails(
				&errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{{Field: "input", Description: "shape"}}})
			return out, st.Err()
		case "plain":
			return out, errors.New("something broke")
		case "panic":
			panic("boom")
		}
		return append(out, "ok"...), nil
	})
	_, err := c.Call(context.Background(), MethodModelInfer, []byte("invalid"))
	st := status.Convert(err)
	if st.Code() != codes.InvalidArgument || !strings.Contains(st.Message(), "input: shape") {
		t.Fatalf("got %v", err)
	}
	if d := st.Details(); len(d) != 1 || d[0].(*errdetails.BadRequest).FieldViolations[0].Field != "input" {
		t.Fatalf("details lost: %v", d)
	}
	if _, err := c.Call(context.Background(), MethodModelInfer, []byte("plain")); status.Code(err) != codes.Unknown ||
		!strings.Contains(err.Error(), "something broke") {
		t.Fatalf("plain error: %v", err)
	}
	if _, err := c.Call(context.Background(), MethodModelInfer, []byte("panic")); status.Code(err) != codes.Internal {
		t.Fatalf("panic: %v", err)
	}
	// The connection still serves after errors and a panic.
	resp, err := c.Call(context.Background(), MethodModelInfer, []byte("x"))
	if err != nil || string(resp.ReadOnlyData()) != "ok" {
		t.Fatalf("after errors: %v", err)
	}
}

func TestDeadlineTravelsAndCancelReachesTheHandler(t *testing.T) {
	deadlines := make(chan time.Duration, 1)
	cancelled := make(chan error, 1)
	_, c := start(t, func(ctx context.Context, _ Method, req, out []byte) ([]byte, error) {
		if string(req) == "block" {
			<-ctx.Done()
			cancelled <- ctx.Err()
			return out, ctx.Err()
		}
		dl, ok := ctx.Deadline()
		if !ok {
			deadlines <- -1
		} else {
			deadlines <- time.Until(dl)
		}
		return out, nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := c.Call(ctx, MethodModelInfer, []byte("deadline")); err != nil {
		t.Fatal(err)
	}
	if d := <-deadlines; d <= 0 || d > 5*time.Second {
		t.Fatalf("handler's deadline %v, want within the caller's 5s", d)
	}
	if _, err := c.Call(context.Background(), MethodModelInfer, []byte("none")); err != nil {
		t.Fatal(err)
	}
	if d := <-deadlines; d != -1 {
		t.Fatalf("a call without deadline got one: %v", d)
	}
	ctx2, cancel2 := context.WithCancel(context.Background())
	go func() { time.Sleep(20 * time.Millisecond); cancel2() }()
	if _, err := c.Call(ctx2, MethodModelInfer, []byte("block")); status.Code(err) != codes.Canceled {
		t.Fatalf("cancelled call: %v", err)
	}
	select {
	case err := <-cancelled:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("handler saw %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the handler was not cancelled")
	}
}

func TestLostConnectionIsUnavailableAndRedials(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	entered := make(chan struct{}, 1)
	s := NewServer(func(ctx context.Context, _ Method, req, out []byte) ([]byte, error) {
		if string(req) == "hang" {
			entered <- struct{}{}
			<-ctx.Done()
		}
		return append(out, req...), nil
	})
	go func() { _ = s.Serve(lis) }()
	c := NewClient(addr, "")
	defer c.Close()
	errc := make(chan error, 1)
	go func() { _, err := c.Call(context.Background(), MethodModelInfer, []byte("hang")); errc <- err }()
	<-entered
	s.Close() // the replica dies with a call in flight
	if err := <-errc; status.Code(err) != codes.Unavailable {
		t.Fatalf("call in flight on a lost connection: %v", err)
	}
	if _, err := c.Call(context.Background(), MethodModelInfer, []byte("x")); status.Code(err) != codes.Unavailable {
		t.Fatalf("call to a dead server: %v", err)
	}
	// A server on the same address again: the client dials it anew.
	lis2, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("address %s taken meanwhile: %v", addr, err)
	}
	s2 := NewServer(reverse)
	go func() { _ = s2.Serve(lis2) }()
	defer s2.Close()
	resp, err := c.Call(context.Background(), MethodModelInfer, []byte("ab"))
	if err != nil || string(resp.ReadOnlyData()) != "1:ba" {
		t.Fatalf("after redial: %v %q", err, resp)
	}
}

func TestShutdownDrainsCallsAndTurnsNewOnesAway(t *testing.T) {
	release := make(chan struct{})
	var entered atomic.Int32
	s, c := start(t, func(_ context.Context, _ Method, req, out []byte) ([]byte, error) {
		if string(req) == "slow" {
			entered.Add(1)
			<-release
		}
		return append(out, req...), nil
	})
	errc := make(chan error, 1)
	go func() {
		resp, err := c.Call(context.Background(), MethodModelInfer, []byte("slow"))
		if err == nil && string(resp.ReadOnlyData()) != "slow" {
			err = fmt.Errorf("answer %q", resp.ReadOnlyData())
		}
		errc <- err
	}()
	for entered.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	done := make(chan error, 1)
	go func() { done <- s.Shutdown(context.Background()) }()
	for !s.draining.Load() {
		time.Sleep(time.Millisecond)
	}
	// A new call on the open connection is turned away, retryably.
	if _, err := c.Call(context.Background(), MethodModelInfer, []byte("new")); status.Code(err) != codes.Unavailable {
		t.Fatalf("call during shutdown: %v", err)
	}
	select {
	case err := <-done:
		t.Fatalf("shutdown returned with a call in progress: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	if err := <-errc; err != nil {
		t.Fatalf("the call in progress failed: %v", err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestBadFramesCloseTheConnection(t *testing.T) {
	s := NewServer(reverse)
	s.MaxFrame = 1 << 10
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.Serve(lis) }()
	defer s.Close()
	c := NewClient(lis.Addr().String(), "")
	defer c.Close()
	_, err = c.Call(context.Background(), MethodModelInfer, make([]byte, 2<<10))
	if code := status.Code(err); code != codes.ResourceExhausted && code != codes.Unavailable {
		t.Fatalf("oversized request: %v", err)
	}
	// Without the protocol's opening, the server hangs up.
	nc, err := net.Dial("tcp", lis.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_, _ = nc.Write([]byte("GET / HTTP/1.1\r\n\r\n"))
	_ = nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := nc.Read(make([]byte, 16)); err == nil {
		t.Fatalf("server answered %d bytes to a stranger", n)
	}
	// The server still serves well-formed clients.
	c2 := NewClient(lis.Addr().String(), "")
	defer c2.Close()
	if resp, err := c2.Call(context.Background(), MethodModelInfer, []byte("ok")); err != nil || string(resp.ReadOnlyData()) != "1:ko" {
		t.Fatalf("after bad frames: %v", err)
	}
}

func TestClosedClientIsUnavailable(t *testing.T) {
	_, c := start(t, reverse)
	if _, err := c.Call(context.Background(), MethodModelInfer, []byte("a")); err != nil {
		t.Fatal(err)
	}
	_ = c.Close()
	if _, err := c.Call(context.Background(), MethodModelInfer, []byte("a")); status.Code(err) != codes.Unavailable {
		t.Fatalf("call on a closed client: %v", err)
	}
}

func BenchmarkCall(b *testing.B) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	s := NewServer(func(_ context.Context, _ Method, req, out []byte) ([]byte, error) { return append(out, req...), nil })
	go func() { _ = s.Serve(lis) }()
	defer s.Close()
	c := NewClient(lis.Addr().String(), "")
	defer c.Close()
	req := make([]byte, 64)
	b.ReportAllocs()
	b.SetParallelism(32)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := c.Call(context.Background(), MethodModelInfer, req)
			if err != nil {
				b.Error(err)
				return
			}
			resp.Free()
		}
	})
}

func TestTokenIsRequiredWhenSet(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := NewServer(reverse)
	s.Token = "s3cret"
	go func() { _ = s.Serve(lis) }()
	defer s.Close()
	for _, tok := range []string{"", "wrong"} {
		c := NewClient(lis.Addr().String(), tok)
		_, err := c.Call(context.Background(), MethodModelInfer, []byte("x"))
		if status.Code(err) != codes.Unauthenticated {
			t.Fatalf("token %q: %v", tok, err)
		}
		_ = c.Close()
	}
	c := NewClient(lis.Addr().String(), "s3cret")
	defer c.Close()
	resp, err := c.Call(context.Background(), MethodModelInfer, []byte("ab"))
	if err != nil || string(resp.ReadOnlyData()) != "1:ba" {
		t.Fatalf("with the token: %v", err)
	}
}

package gateway

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// countingServer is an httptest server that counts the connections it
// accepted.
func countingServer(t *testing.T, h http.HandlerFunc) (*httptest.Server, *atomic.Int64) {
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, &conns
}

func TestH1KeepsOneConnectionAlive(t *testing.T) {
	var got []string
	srv, conns := countingServer(t, func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		got = append(got, fmt.Sprintf("%s %s auth=%s ct=%s hl=%s id=%s body=%s", r.Method, r.URL.Path, r.Header.Get("Authorization"),
			r.Header.Get("Content-Type"), r.Header.Get("Inference-Header-Content-Length"), r.Header.Get(requestIDHeader), body))
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Inference-Header-Content-Length", "2")
		_, _ = w.Write([]byte("{}xyz"))
	})
	p := newH1Pool(strings.TrimPrefix(srv.URL, "http://"))
	defer p.close()
	for i := range 3 {
		out, a, err := p.roundTrip(context.Background(), &h1Request{method: http.MethodPost, path: "/v2/models/m/infer",
			auth: "Bearer tok", contentType: "application/octet-stream", headerLen: "2", requestID: fmt.Sprint("r", i),
			body: []byte(`{}ab`)}, nil)
		require.NoError(t, err)
		require.Equal(t, "{}xyz", string(out))
		require.Equal(t, h1Answer{status: 200, contentType: "application/octet-stream", headerLen: "2"}, a)
	}
	require.Equal(t, int64(1), conns.Load(), "three calls in turn share one connection")
	require.Equal(t, "POST /v2/models/m/infer auth=Bearer tok ct=application/octet-stream hl=2 id=r2 body={}ab", got[2])
}

func TestH1LargeBodyArrivesWhole(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB: written with writev
	srv, _ := countingServer(t, func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		_, _ = w.Write(body) // echoed, chunked: no Content-Length set
	})
	p := newH1Pool(strings.TrimPrefix(srv.URL, "http://"))
	defer p.close()
	out, a, err := p.roundTrip(context.Background(), &h1Request{method: http.MethodPost, path: "/echo", body: big}, nil)
	require.NoError(t, err)
	require.Equal(t, 200, a.status)
	require.True(t, bytes.Equal(big, out), "the body came back as sent (%d bytes of %d)", len(out), len(big))
}

// rawServer answers each connection with handle, on a listener of its own.
func rawServer(t *testing.T, handle func(c net.Conn, br *bufio.Reader)) (string, *atomic.Int64) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = l.Close() })
	var conns atomic.Int64
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			go func() {
				defer c.Close()
				handle(c, bufio.NewReader(c))
			}()
		}
	}()
	return l.Addr().String(), &conns
}

// readRequest reads one request and its body off br.
func readRequest(br *bufio.Reader) (*http.Request, error) {
	r, err := http.ReadRequest(br)
	if err != nil {
		return nil, err
	}
	_, err = io.Copy(io.Discard, r.Body)
	return r, err
}

func TestH1ReadsEveryFraming(t *testing.T) {
	answers := map[string]string{
		// Chunked, after an informational answer.
		"/chunked": "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
		// Ended by the connection's close.
		"/close": "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end",
		// An error answer with a length.
		"/err": "HTTP/1.1 404 Not Found\r\nContent-Length: 18\r\n\r\n{\"error\":\"no m\"}\r\n",
	}
	addr, conns := rawServer(t, func(c net.Conn, br *bufio.Reader) {
		for {
			r, err := readRequest(br)
			if err != nil {
				return
			}
			_, _ = io.WriteString(c, answers[r.URL.Path])
			if r.URL.Path == "/close" {
				return
			}
		}
	})
	p := newH1Pool(addr)
	defer p.close()
	call := func(path string) (string, h1Answer) {
		out, a, err := p.roundTrip(context.Background(), &h1Request{method: http.MethodGet, path: path}, nil)
		require.NoError(t, err, path)
		return string(out), a
	}
	out, a := call("/chunked")
	require.Equal(t, "abcde", out)
	require.Equal(t, 200, a.status)
	out, a = call("/close")
	require.Equal(t, "until the end", out)
	require.Equal(t, "text/plain", a.contentType)
	out, a = call("/err")
	require.Equal(t, 404, a.status)
	require.Equal(t, "{\"error\":\"no m\"}\r\n", out)
	require.Equal(t, int64(2), conns.Load(), "the connection closed by its answer is not used again; the chunked one is")
}

func TestH1RetriesAConnectionTheServerClosed(t *testing.T) {
	// The server closes a connection after each answer without saying
	// so, as a server whose keep-alive timeout passed does.
	addr, conns := rawServer(t, func(c net.Conn, br *bufio.Reader) {
		if _, err := readRequest(br); err != nil {
			return
		}
		_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	})
	p := newH1Pool(addr)
	defer p.close()
	for range 3 {
		out, _, err := p.roundTrip(context.Background(), &h1Request{method: http.MethodPost, path: "/x", body: []byte("{}")}, nil)
		require.NoError(t, err)
		require.Equal(t, "ok", string(out))
		time.Sleep(20 * time.Millisecond) // the close reaches the client
	}
	require.Equal(t, int64(3), conns.Load(), "each call after the first found its kept-alive connection closed and dialled again")
}

func TestH1CancelledCallLeavesNoConnection(t *testing.T) {
	release := make(chan struct{})
	addr, conns := rawServer(t, func(c net.Conn, br *bufio.Reader) {
		for {
			r, err := readRequest(br)
			if err != nil {
				return
			}
			if r.URL.Path == "/slow" {
				<-release
			}
			_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		}
	})
	defer close(release)
	p := newH1Pool(addr)
	defer p.close()
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	start := time.Now()
	_, _, err := p.roundTrip(ctx, &h1Request{method: http.MethodGet, path: "/slow"}, nil)
	require.ErrorIs(t, err, context.Canceled)
	require.Less(t, time.Since(start), 5*time.Second)
	// The next call does not read the slow call's late answer.
	out, _, err := p.roundTrip(context.Background(), &h1Request{method: http.MethodGet, path: "/fast"}, nil)
	require.NoError(t, err)
	require.Equal(t, "ok", string(out))
	require.Equal(t, int64(2), conns.Load())

	ctx, cancel = context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, _, err = p.roundTrip(ctx, &h1Request{method: http.MethodGet, path: "/slow"}, nil)
	require.ErrorIs(t, err, context.DeadlineExceeded)
}

func TestH1RefusesHeaderInjection(t *testing.T) {
	addr, conns := rawServer(t, func(c net.Conn, br *bufio.Reader) {})
	p := newH1Pool(addr)
	defer p.close()
	for _, req := range []*h1Request{
		{method: http.MethodPost, path: "/x", contentType: "application/json\r\nX-Evil: 1"},
		{method: http.MethodPost, path: "/x", headerLen: "4\n"},
	} {
		_, _, err := p.roundTrip(context.Background(), req, nil)
		require.True(t, errors.Is(err, errH1Header), "%v", err)
	}
	require.Equal(t, int64(0), conns.Load(), "nothing was sent")
}

func TestH1UnreachableIsASendError(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	p := newH1Pool(addr)
	_, _, err = p.roundTrip(context.Background(), &h1Request{method: http.MethodGet, path: "/"}, nil)
	var se *h1SendError
	require.True(t, errors.As(err, &se), "%v", err)
}

func TestH1ClosesConnectionsIdleTooLong(t *testing.T) {
	closed := make(chan struct{}, 4)
	addr, conns := rawServer(t, func(c net.Conn, br *bufio.Reader) {
		for {
			if _, err := readRequest(br); err != nil {
				closed <- struct{}{} // the client closed it
				return
			}
			_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		}
	})
	p := newH1Pool(addr)
	p.idleTimeout = 100 * time.Millisecond
	defer p.close()
	_, _, err := p.roundTrip(context.Background(), &h1Request{method: http.MethodGet, path: "/"}, nil)
	require.NoError(t, err)
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("the idle connection stayed open")
	}
	p.mu.Lock()
	require.Empty(t, p.idle)
	require.Nil(t, p.sweep, "nothing idle, nothing to sweep")
	p.mu.Unlock()
	// The next call dials again.
	_, _, err = p.roundTrip(context.Background(), &h1Request{method: http.MethodGet, path: "/"}, nil)
	require.NoError(t, err)
	require.Equal(t, int64(2), conns.Load())
}

package gateway

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"

	"golang.org/x/net/http/httpguts"
)

// h1Pool is the HTTP/1.1 client of the KServe v2 calls the gateway sends
// one replica over HTTP (inference, metadata): the calling goroutine
// writes the request and reads the answer itself, on a kept-alive
// connection of the pool. net/http's Transport hands every request to a
// connection's writer goroutine and every answer back from its reader
// goroutine: two wake-ups a call, about 30 µs on loopback, a fifth of
// what the gateway adds in front of a Python server (bench/README.md).
// Answers are still parsed by net/http (http.ReadResponse): lengths,
// chunks, bodies that end with the connection. The OpenAI routes, whose
// answers stream, keep net/http's client.
type h1Pool struct {
	addr   string
	dialer net.Dialer
	// idleTimeout is h1IdleTimeout but in tests.
	idleTimeout time.Duration

	mu     sync.Mutex
	idle   []*h1Conn // the most recently used last
	closed bool
	// sweep, while connections are idle, closes those idle for
	// idleTimeout, as net/http's IdleConnTimeout did: a replica's
	// server does not keep a thread for a burst long gone.
	sweep *time.Timer
}

// h1Conn is one connection to the replica.
type h1Conn struct {
	c    net.Conn
	br   *bufio.Reader
	head []byte
	// idleSince is when it went back to the pool.
	idleSince time.Time
}

const (
	// h1MaxIdle bounds the kept-alive connections of one replica.
	h1MaxIdle = 1024
	// h1IdleTimeout closes a connection unused this long, as net/http's
	// IdleConnTimeout did.
	h1IdleTimeout = 90 * time.Second
	// h1InlineBody is the largest body copied behind the request's head
	// into one write; a larger one goes out with writev, uncopied.
	h1InlineBody = 16 << 10
)

func newH1Pool(addr string) *h1Pool {
	return &h1Pool{addr: addr, dialer: net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}, idleTimeout: h1IdleTimeout}
}

// h1Request is one request to a replica. Every header value is the
// gateway's own or checked where it came in (requestID); contentType
// and headerLen, which a REST client may set, are checked here.
type h1Request struct {
	method, path string
	auth         string // the Authorization header
	contentType  string
	headerLen    string // Inference-Header-Content-Length
	requestID    string
	body         []byte
}

// h1Answer is what the gateway reads of an answer besides its body.
type h1Answer struct {
	status      int
	contentType string
	headerLen   string
}

// errH1Header refuses a header value that would break the request's
// framing: it names no field of the client's because REST handlers check
// theirs first.
var errH1Header = errors.New("a header value holds a control character")

// roundTrip sends req and appends the answer's body to dst (at most
// maxReplicaAnswer bytes). An error before any byte of the answer came
// back is an *h1SendError (nothing was answered: the call may go to
// another replica); any other is the answer broken off.
func (p *h1Pool) roundTrip(ctx context.Context, req *h1Request, dst []byte) ([]byte, h1Answer, error) {
	if !httpguts.ValidHeaderFieldValue(req.contentType) || !httpguts.ValidHeaderFieldValue(req.headerLen) ||
		!httpguts.ValidHeaderFieldValue(req.requestID) || !httpguts.ValidHeaderFieldValue(req.auth) {
		return dst, h1Answer{}, errH1Header
	}
	c, reused := p.take()
	for {
		if c == nil {
			nc, err := p.dialer.DialContext(ctx, "tcp", p.addr)
			if err != nil {
				return dst, h1Answer{}, &h1SendError{err}
			}
			c = &h1Conn{c: nc, br: bufio.NewReader(nc)}
		}
		out, a, keep, err := c.exchange(ctx, p.addr, req, dst)
		if err == nil && keep {
			p.put(c)
		} else {
			_ = c.c.Close()
		}
		var se *h1SendError
		if reused && errors.As(err, &se) && ctx.Err() == nil && staleConn(se.err) {
			// A kept-alive connection the server closed meanwhile: the
			// others of its time may be closed too; the call goes again
			// on a new one.
			p.closeIdle()
			c, reused = nil, false
			continue
		}
		return out, a, err
	}
}

// h1SendError is a call that got no byte of an answer.
type h1SendError struct{ err error }

func (e *h1SendError) Error() string { return e.err.Error() }
func (e *h1SendError) Unwrap() error { return e.err }

// staleConn reports whether a kept-alive connection failed as one the
// server closed while it was idle.
func staleConn(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, net.ErrClosed)
}

// aLongTimeAgo is a deadline that has passed: it makes the connection's
// blocked reads and writes return at once.
var aLongTimeAgo = time.Unix(1, 0)

// exchange writes one request and reads its answer; keep says whether
// the connection can carry another.
func (c *h1Conn) exchange(ctx context.Context, host string, req *h1Request, dst []byte) (out []byte, a h1Answer, keep bool, err error) {
	dl, hasDeadline := ctx.Deadline()
	if hasDeadline {
		_ = c.c.SetDeadline(dl)
	}
	stop := func() bool { return true }
	if ctx.Done() != nil {
		stop = context.AfterFunc(ctx, func() { _ = c.c.SetDeadline(aLongTimeAgo) })
	}
	defer func() {
		if !stop() {
			// Cancelled meanwhile: the deadline has passed or is about
			// to, so the connection cannot go on.
			keep = false
		}
		switch {
		case err == nil:
		case ctx.Err() != nil:
			err = ctx.Err()
		case hasDeadline && errors.Is(err, os.ErrDeadlineExceeded):
			// The context's deadline, a moment before its timer said so.
			err = context.DeadlineExceeded
		}
		if keep && hasDeadline {
			_ = c.c.SetDeadline(time.Time{})
		}
	}()

	c.head = appendH1Head(c.head[:0], host, req)
	if len(req.body) <= h1InlineBody {
		c.head = append(c.head, req.body...)
		_, err = c.c.Write(c.head)
	} else {
		bufs := net.Buffers{c.head, req.body}
		_, err = bufs.WriteTo(c.c)
	}
	if err != nil {
		return dst, a, false, &h1SendError{err}
	}
	if _, err = c.br.Peek(1); err != nil {
		return dst, a, false, &h1SendError{err}
	}
	var resp *http.Response
	for {
		resp, err = http.ReadResponse(c.br, nil)
		if err != nil {
			return dst, a, false, err
		}
		// An informational answer (100 Continue, 103 Early Hints)
		// comes before the real one.
		if resp.StatusCode >= 200 || resp.StatusCode == http.StatusSwitchingProtocols {
			break
		}
	}
	a = h1Answer{status: resp.StatusCode, contentType: resp.Header.Get("Content-Type"),
		headerLen: resp.Header.Get(inferenceHeaderLength)}
	out, err = readAll(dst, resp.Body, resp.ContentLength)
	if err != nil {
		return out, a, false, err
	}
	return out, a, !resp.Close, nil
}

// inferenceHeaderLength is the binary data extension's header, spelt as
// net/http keys it.
var inferenceHeaderLength = http.CanonicalHeaderKey("Inference-Header-Content-Length")

// appendH1Head appends the request line and headers of req.
func appendH1Head(b []byte, host string, req *h1Request) []byte {
	b = append(b, req.method...)
	b = append(b, ' ')
	b = append(b, req.path...)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, host...)
	b = append(b, "\r\nUser-Agent: bmaas-gateway\r\n"...)
	if req.auth != "" {
		b = append(b, "Authorization: "...)
		b = append(b, req.auth...)
		b = append(b, "\r\n"...)
	}
	if req.requestID != "" {
		b = append(b, requestIDHeader+": "...)
		b = append(b, req.requestID...)
		b = append(b, "\r\n"...)
	}
	if req.method != http.MethodGet || len(req.body) > 0 {
		if req.contentType != "" {
			b = append(b, "Content-Type: "...)
			b = append(b, req.contentType...)
			b = append(b, "\r\n"...)
		}
		if req.headerLen != "" {
			b = append(b, inferenceHeaderLength+": "...)
			b = append(b, req.headerLen...)
			b = append(b, "\r\n"...)
		}
		b = append(b, "Content-Length: "...)
		b = strconv.AppendInt(b, int64(len(req.body)), 10)
		b = append(b, "\r\n"...)
	}
	return append(b, "\r\n"...)
}

// take is a kept-alive connection, the most recently used (its peer
// the likeliest to keep it open), or nil.
func (p *h1Pool) take() (*h1Conn, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for n := len(p.idle); n > 0; n = len(p.idle) {
		c := p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
		if time.Since(c.idleSince) < p.idleTimeout {
			return c, true
		}
		_ = c.c.Close()
	}
	return nil, false
}

// put keeps c for the next call, unless the pool is closed or full.
func (p *h1Pool) put(c *h1Conn) {
	c.idleSince = time.Now()
	p.mu.Lock()
	if !p.closed && len(p.idle) < h1MaxIdle {
		p.idle = append(p.idle, c)
		c = nil
		if p.sweep == nil {
			p.sweep = time.AfterFunc(p.idleTimeout, p.closeStale)
		}
	}
	p.mu.Unlock()
	if c != nil {
		_ = c.c.Close()
	}
}

// closeStale closes the connections idle for idleTimeout and looks
// again when the oldest left will be.
func (p *h1Pool) closeStale() {
	p.mu.Lock()
	n := 0
	for n < len(p.idle) && time.Since(p.idle[n].idleSince) >= p.idleTimeout {
		n++
	}
	stale := slices.Clone(p.idle[:n])
	p.idle = slices.Delete(p.idle, 0, n)
	if len(p.idle) > 0 && !p.closed {
		p.sweep = time.AfterFunc(p.idleTimeout-time.Since(p.idle[0].idleSince), p.closeStale)
	} else {
		p.sweep = nil
	}
	p.mu.Unlock()
	closeConns(stale)
}

// closeIdle closes the kept-alive connections.
func (p *h1Pool) closeIdle() {
	p.mu.Lock()
	idle := p.idle
	p.idle = nil
	p.mu.Unlock()
	closeConns(idle)
}

func closeConns(cs []*h1Conn) {
	for _, c := range cs {
		_ = c.c.Close()
	}
}

// close closes the idle connections and every one that comes back;
// calls in flight finish.
func (p *h1Pool) close() {
	p.mu.Lock()
	p.closed = true
	if p.sweep != nil {
		p.sweep.Stop()
		p.sweep = nil
	}
	p.mu.Unlock()
	p.closeIdle()
}

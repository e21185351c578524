package lane

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"
	"time"

	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// Client calls one server address. It connects on the first call and
// again after the connection is lost; it is safe for concurrent use.
type Client struct {
	addr  string
	token string
	// MaxFrame bounds a response body; DefaultMaxFrame when 0.
	MaxFrame int
	// TLS, when set before the first call, makes the connections TLS;
	// the server is verified for the host of addr.
	TLS *tls.Config

	dialMu sync.Mutex // one dial at a time

	mu     sync.Mutex
	conn   *clientConn
	closed bool
}

// NewClient returns a client of addr (host:port) that opens its
// connections with token (none when empty); it dials lazily.
func NewClient(addr, token string) *Client { return &Client{addr: addr, token: token} }

// Addr is the server's address.
func (c *Client) Addr() string { return c.addr }

type clientConn struct {
	c       net.Conn
	w       writer
	mu      sync.Mutex
	next    uint32
	pending map[uint32]*call
	err     error // set once the connection is lost
}

type call struct {
	done chan result
}

type result struct {
	buf mem.Buffer
	err error
}

// bufPool holds the response bodies handed to callers.
var bufPool = mem.DefaultBufferPool()

var callPool = sync.Pool{New: func() any { return &call{done: make(chan result, 1)} }}

// errClosed answers calls on a closed client.
var errClosed = status.Error(codes.Unavailable, "lane: client closed")

// Call sends req to method and returns the response bytes, which the
// caller owns (Free them; a gRPC RawFrame can take them over). A failure
// to reach the server, or a connection lost before the answer, is
// Unavailable; the server's errors keep their gRPC status. ctx's
// deadline travels with the call, and the server's handler is cancelled
// when ctx ends first.
func (c *Client) Call(ctx context.Context, method Method, req []byte) (mem.Buffer, error) {
	cc, err := c.connect(ctx)
	if err != nil {
		return nil, err
	}
	var timeout int64
	if dl, ok := ctx.Deadline(); ok {
		timeout = max(time.Until(dl).Microseconds(), 1)
	}
	cl := callPool.Get().(*call)
	cc.mu.Lock()
	if cc.err != nil {
		err := cc.err
		cc.mu.Unlock()
		callPool.Put(cl)
		c.drop(cc)
		return nil, err
	}
	cc.next++
	id := cc.next
	cc.pending[id] = cl
	cc.mu.Unlock()
	err = cc.w.send(func(b []byte) []byte {
		b = putHeader(b, timeoutSize+len(req), id, byte(method))
		b = binary.LittleEndian.AppendUint64(b, uint64(timeout))
		return append(b, req...)
	})
	if err != nil {
		cc.lost(err)
		c.drop(cc)
	}
	select {
	case r := <-cl.done:
		callPool.Put(cl)
		return r.buf, r.err
	case <-ctx.Done():
	}
	cc.mu.Lock()
	_, mine := cc.pending[id]
	delete(cc.pending, id)
	cc.mu.Unlock()
	if !mine {
		// The answer came meanwhile: it is in done.
		r := <-cl.done
		callPool.Put(cl)
		return r.buf, r.err
	}
	callPool.Put(cl)
	_ = cc.w.send(func(b []byte) []byte { return putHeader(b, 0, id, kindCancel) })
	return nil, status.FromContextError(ctx.Err()).Err()
}

// connect returns the live connection, dialling one if there is none.
func (c *Client) connect(ctx context.Context) (*clientConn, error) {
	c.mu.Lock()
	cc, closed := c.conn, c.closed
	c.mu.Unlock()
	if closed {
		return nil, errClosed
	}
	if cc != nil {
		return cc, nil
	}
	c.dialMu.Lock()
	defer c.dialMu.Unlock()
	c.mu.Lock()
	cc = c.conn
	c.mu.Unlock()
	if cc != nil {
		return cc, nil
	}
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", c.addr)
	if err != nil {
		return nil, status.Errorf(codes.Unavailable, "lane %s: %v", c.addr, err)
	}
	if tc, ok := nc.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	if c.TLS != nil {
		cfg := c.TLS.Clone()
		if cfg.ServerName == "" {
			cfg.ServerName, _, _ = net.SplitHostPort(c.addr)
		}
		tc := tls.Client(nc, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			_ = nc.Close()
			return nil, status.Errorf(codes.Unavailable, "lane %s: %v", c.addr, err)
		}
		nc = tc
	}
	open := binary.LittleEndian.AppendUint16([]byte(Magic), uint16(len(c.token)))
	if _, err := nc.Write(append(open, c.token...)); err != nil {
		_ = nc.Close()
		return nil, status.Errorf(codes.Unavailable, "lane %s: %v", c.addr, err)
	}
	cc = &clientConn{c: nc, w: writer{w: nc}, pending: map[uint32]*call{}}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		_ = nc.Close()
		return nil, errClosed
	}
	c.conn = cc
	c.mu.Unlock()
	go c.read(cc)
	return cc, nil
}

// read delivers responses until the connection fails.
func (c *Client) read(cc *clientConn) {
	r := bufio.NewReaderSize(cc.c, 64<<10)
	maxFrame := orDefault(c.MaxFrame, DefaultMaxFrame)
	var h [headerSize]byte
	var err error
	for {
		if _, err = io.ReadFull(r, h[:]); err != nil {
			break
		}
		var (
			n    int
			id   uint32
			kind byte
		)
		if n, id, kind, err = readHeader(h[:], maxFrame); err != nil {
			break
		}
		var buf mem.Buffer
		if mem.IsBelowBufferPoolingThreshold(n) {
			buf = mem.SliceBuffer(make([]byte, n))
		} else {
			buf = mem.NewBuffer(bufPool.Get(n), bufPool)
		}
		if _, err = io.ReadFull(r, buf.ReadOnlyData()); err != nil {
			buf.Free()
			break
		}
		if id == 0 { // the server refuses the connection
			err = decodeStatus(kind, buf.ReadOnlyData())
			buf.Free()
			cc.fail(err)
			c.drop(cc)
			return
		}
		cc.mu.Lock()
		cl := cc.pending[id]
		delete(cc.pending, id)
		cc.mu.Unlock()
		if cl == nil { // the caller gave up
			buf.Free()
			continue
		}
		if kind == byte(codes.OK) {
			cl.done <- result{buf: buf}
			continue
		}
		cl.done <- result{err: decodeStatus(kind, buf.ReadOnlyData())}
		buf.Free()
	}
	cc.lost(err)
	c.drop(cc)
}

func decodeStatus(code byte, b []byte) error {
	sp := &spb.Status{}
	if err := proto.Unmarshal(b, sp); err != nil || sp.Code != int32(code) {
		return status.Errorf(codes.Code(code), "lane: undecodable status: %v", err)
	}
	return status.ErrorProto(sp)
}

// lost fails every pending call of a broken connection with Unavailable.
func (cc *clientConn) lost(cause error) {
	if cause == nil || errors.Is(cause, io.EOF) {
		cause = io.ErrUnexpectedEOF
	}
	cc.fail(status.Errorf(codes.Unavailable, "lane %s: connection lost: %v", cc.c.RemoteAddr(), cause))
}

// fail fails every pending and later call of the connection with err.
func (cc *clientConn) fail(err error) {
	cc.w.fail(err)
	cc.mu.Lock()
	if cc.err == nil {
		cc.err = err
	}
	pending := cc.pending
	cc.pending = map[uint32]*call{}
	cc.mu.Unlock()
	_ = cc.c.Close()
	for _, cl := range pending {
		cl.done <- result{err: err}
	}
}

// drop forgets a broken connection so that the next call dials again.
func (c *Client) drop(cc *clientConn) {
	c.mu.Lock()
	if c.conn == cc {
		c.conn = nil
	}
	c.mu.Unlock()
}

// Close closes the connection; calls in progress fail Unavailable.
func (c *Client) Close() error {
	c.mu.Lock()
	cc := c.conn
	c.conn, c.closed = nil, true
	c.mu.Unlock()
	if cc != nil {
		cc.lost(errors.New("client closed"))
	}
	return nil
}

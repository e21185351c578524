package lane

import (
	"bufio"
	"context"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// Handler answers one call: it appends the encoded response to out and
// returns it, or returns an error (a gRPC status error keeps its code and
// details; any other error is Unknown). req is valid until it returns.
type Handler func(ctx context.Context, method Method, req, out []byte) ([]byte, error)

// Server serves calls to a Handler.
type Server struct {
	handler Handler
	// Token, when set, is the bearer token every connection must open
	// with.
	Token string
	// MaxFrame bounds a request body; DefaultMaxFrame when 0.
	MaxFrame int
	// MaxIdleWorkers is how many handler goroutines wait for work
	// between bursts; 256 when 0.
	MaxIdleWorkers int
	// MaxCallsPerConn bounds the calls of one connection in progress;
	// the connection is not read further until one ends. 1024 when 0.
	MaxCallsPerConn int

	work     chan *task
	quit     chan struct{}
	idle     atomic.Int32
	calls    sync.WaitGroup
	draining atomic.Bool

	mu     sync.Mutex
	lis    []net.Listener
	conns  map[*serverConn]struct{}
	closed bool
}

// NewServer returns a server of h.
func NewServer(h Handler) *Server {
	return &Server{handler: h, work: make(chan *task), quit: make(chan struct{}), conns: map[*serverConn]struct{}{}}
}

type serverConn struct {
	s     *Server
	c     net.Conn
	w     writer
	slots chan struct{}

	mu      sync.Mutex
	cancels map[uint32]context.CancelFunc
}

type task struct {
	sc      *serverConn
	id      uint32
	method  Method
	timeout time.Duration
	// data holds the request; it stays with the pooled task up to
	// maxKeep bytes.
	data []byte
	body []byte
}

var taskPool = sync.Pool{New: func() any { return new(task) }}

// Serve accepts connections on lis until Shutdown or Close.
func (s *Server) Serve(lis net.Listener) error {
	s.mu.Lock()
	if s.draining.Load() {
		s.mu.Unlock()
		return errors.New("lane: server is shut down")
	}
	s.lis = append(s.lis, lis)
	s.mu.Unlock()
	for {
		c, err := lis.Accept()
		if err != nil {
			if s.draining.Load() {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(5 * time.Millisecond)
				continue
			}
			return err
		}
		go s.serveConn(c)
	}
}

func (s *Server) serveConn(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	sc := &serverConn{s: s, c: c, w: writer{w: c}, cancels: map[uint32]context.CancelFunc{},
		slots: make(chan struct{}, orDefault(s.MaxCallsPerConn, 1024))}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		_ = c.Close()
		return
	}
	s.conns[sc] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.conns, sc)
		s.mu.Unlock()
		_ = c.Close()
		sc.cancelAll()
	}()
	r := bufio.NewReaderSize(c, 64<<10)
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if !sc.hello(r) {
		return
	}
	_ = c.SetReadDeadline(time.Time{})
	maxFrame := orDefault(s.MaxFrame, DefaultMaxFrame)
	var h [headerSize]byte
	for {
		if _, err := io.ReadFull(r, h[:]); err != nil {
			return
		}
		n, id, kind, err := readHeader(h[:], maxFrame+timeoutSize)
		if err != nil {
			sc.reply(id, status.New(codes.ResourceExhausted, err.Error()), nil)
			return
		}
		if kind == kindCancel {
			if _, err := r.Discard(n); err != nil {
				return
			}
			sc.cancel(id)
			continue
		}
		if n < timeoutSize {
			sc.reply(id, status.Newf(codes.InvalidArgument, "lane: request of %d bytes has no timeout", n), nil)
			return
		}
		t := taskPool.Get().(*task)
		t.sc, t.id, t.method = sc, id, Method(kind)
		if cap(t.data) < n {
			t.data = make([]byte, n)
		}
		t.data = t.data[:n]
		if _, err := io.ReadFull(r, t.data); err != nil {
			*t = task{}
			taskPool.Put(t)
			return
		}
		t.timeout = time.Duration(binary.LittleEndian.Uint64(t.data)) * time.Microsecond
		t.body = t.data[timeoutSize:]
		sc.slots <- struct{}{}
		s.calls.Add(1)
		s.dispatch(t)
	}
}

// hello reads the connection's opening and checks its token.
func (sc *serverConn) hello(r *bufio.Reader) bool {
	open := make([]byte, len(Magic)+2)
	if _, err := io.ReadFull(r, open); err != nil || string(open[:len(Magic)]) != Magic {
		return false
	}
	n := int(binary.LittleEndian.Uint16(open[len(Magic):]))
	if n > maxToken {
		return false
	}
	tok := make([]byte, n)
	if _, err := io.ReadFull(r, tok); err != nil {
		return false
	}
	if want := sc.s.Token; want != "" && subtle.ConstantTimeCompare(tok, []byte(want)) != 1 {
		sc.reply(0, status.New(codes.Unauthenticated, "lane: missing or invalid bearer token"), nil)
		// Hang up after the client has read the refusal: closing with
		// its requests unread would reset the connection and lose it.
		if tc, ok := sc.c.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
			_ = sc.c.SetReadDeadline(time.Now().Add(2 * time.Second))
			_, _ = io.Copy(io.Discard, r)
		}
		return false
	}
	return true
}

// dispatch hands t to an idle worker, or starts one.
func (s *Server) dispatch(t *task) {
	select {
	case s.work <- t:
	default:
		go s.worker(t)
	}
}

// worker runs t, then waits for more work while fewer than
// MaxIdleWorkers others do.
func (s *Server) worker(t *task) {
	var out []byte
	for {
		out = s.run(t, out[:0])
		if cap(out) > maxKeep {
			out = nil
		}
		if int(s.idle.Add(1)) > orDefault(s.MaxIdleWorkers, 256) {
			s.idle.Add(-1)
			return
		}
		select {
		case t = <-s.work:
			s.idle.Add(-1)
		case <-s.quit:
			s.idle.Add(-1)
			return
		}
	}
}

// run answers one call with out as scratch for the response.
func (s *Server) run(t *task, out []byte) []byte {
	sc := t.sc
	defer func() {
		data := t.data[:0]
		if cap(data) > maxKeep {
			data = nil
		}
		*t = task{data: data}
		taskPool.Put(t)
		<-sc.slots
		s.calls.Done()
	}()
	if s.draining.Load() {
		sc.reply(t.id, status.New(codes.Unavailable, "lane: the server is shutting down"), nil)
		return out
	}
	var (
		ctx    context.Context
		cancel context.CancelFunc
	)
	if t.timeout > 0 {
		ctx, cancel = context.WithTimeout(context.Background(), t.timeout)
	} else {
		ctx, cancel = context.WithCancel(context.Background())
	}
	sc.track(t.id, cancel)
	out, err := s.call(ctx, t.method, t.body, out)
	sc.untrack(t.id)
	cancel()
	if err != nil {
		sc.reply(t.id, statusOf(err), nil)
		return out
	}
	sc.reply(t.id, nil, out)
	return out
}

// call runs the handler, turning a panic into Internal.
func (s *Server) call(ctx context.Context, m Method, req, out []byte) (resp []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			resp, err = out, status.Error(codes.Internal, "internal error")
		}
	}()
	return s.handler(ctx, m, req, out)
}

func statusOf(err error) *status.Status {
	if st, ok := status.FromError(err); ok {
		return st
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return status.New(codes.DeadlineExceeded, err.Error())
	}
	if errors.Is(err, context.Canceled) {
		return status.New(codes.Canceled, err.Error())
	}
	return status.New(codes.Unknown, err.Error())
}

// reply writes a response frame: body when st is nil, else the status.
func (sc *serverConn) reply(id uint32, st *status.Status, body []byte) {
	kind := byte(codes.OK)
	if st != nil {
		b, err := proto.Marshal(st.Proto())
		if err != nil {
			b, _ = proto.Marshal(status.New(codes.Internal, "lane: unencodable status").Proto())
		}
		kind, body = byte(st.Code()), b
		if kind == byte(codes.OK) {
			kind = byte(codes.Unknown)
		}
	}
	_ = sc.w.send(func(b []byte) []byte {
		return append(putHeader(b, len(body), id, kind), body...)
	})
}

func (sc *serverConn) track(id uint32, cancel context.CancelFunc) {
	sc.mu.Lock()
	sc.cancels[id] = cancel
	sc.mu.Unlock()
}

func (sc *serverConn) untrack(id uint32) {
	sc.mu.Lock()
	delete(sc.cancels, id)
	sc.mu.Unlock()
}

func (sc *serverConn) cancel(id uint32) {
	sc.mu.Lock()
	c := sc.cancels[id]
	sc.mu.Unlock()
	if c != nil {
		c()
	}
}

func (sc *serverConn) cancelAll() {
	sc.mu.Lock()
	for _, c := range sc.cancels {
		c()
	}
	sc.mu.Unlock()
}

// Shutdown stops accepting connections, answers new calls Unavailable
// (a gateway then retries them on another replica), waits for the calls
// in progress to end (or ctx), and closes every connection.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.draining.Store(true)
	for _, l := range s.lis {
		_ = l.Close()
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.calls.Wait(); close(done) }()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = fmt.Errorf("lane: calls still in progress: %w", ctx.Err())
	}
	s.Close()
	return err
}

// Close stops the server at once: listeners and connections close and
// the calls in progress are cancelled.
func (s *Server) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.draining.Store(true)
	for _, l := range s.lis {
		_ = l.Close()
	}
	for sc := range s.conns {
		_ = sc.c.Close()
	}
	if !s.closed {
		s.closed = true
		close(s.quit)
	}
}

func orDefault(v, d int) int {
	if v > 0 {
		return v
	}
	return d
}

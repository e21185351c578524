package lane

import (
	"io"
	"sync"
)

// writer batches frames onto a connection without a writer goroutine:
// a sender appends its frame to the pending buffer and, when nobody is
// writing, writes everything pending itself (and then whatever arrived
// meanwhile), so concurrent senders share system calls and an idle
// connection costs no hand-off.
type writer struct {
	w io.Writer

	mu       sync.Mutex
	pending  []byte
	spare    []byte
	flushing bool
	err      error
}

// maxKeep is the largest buffer kept between flushes.
const maxKeep = 1 << 20

// send appends one frame (built by fill on the pending buffer) and
// writes it unless another sender is writing already; that sender then
// writes it. The error is the connection's first write error.
func (w *writer) send(fill func([]byte) []byte) error {
	w.mu.Lock()
	if w.err != nil {
		err := w.err
		w.mu.Unlock()
		return err
	}
	w.pending = fill(w.pending)
	if w.flushing {
		w.mu.Unlock()
		return nil
	}
	w.flushing = true
	for len(w.pending) > 0 && w.err == nil {
		out := w.pending
		w.pending = w.spare[:0]
		w.mu.Unlock()
		_, err := w.w.Write(out)
		w.mu.Lock()
		if err != nil {
			w.err = err
		}
		if cap(out) <= maxKeep {
			w.spare = out[:0]
		} else {
			w.spare = nil
		}
	}
	w.flushing = false
	err := w.err
	w.mu.Unlock()
	return err
}

// fail makes every later send return err.
func (w *writer) fail(err error) {
	w.mu.Lock()
	if w.err == nil {
		w.err = err
	}
	w.mu.Unlock()
}

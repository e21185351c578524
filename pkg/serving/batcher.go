package serving

import (
	"context"
	"runtime"
	"sync"
	"time"
)

// call is one request waiting in the batcher's queue; calls are pooled.
type call struct {
	x    []float64
	rows int
	out  []float64
	err  error
	done chan struct{}
}

var callPool = sync.Pool{New: func() any { return &call{done: make(chan struct{}, 1)} }}

// batcher gathers concurrent requests into one model call of at most
// max rows, waiting at most delay for the batch to fill.
type batcher struct {
	be    backend
	max   int
	delay time.Duration
	queue chan *call
	stop  chan struct{}
	// fill holds the one token of the worker gathering a batch, so a batch
	// takes every waiting call while the other workers compute theirs
	// (workers that gathered side by side would split the queue and each
	// wait out the delay with a part-filled batch).
	fill chan struct{}
	// help hands a share of a batch's rows to an idle worker (split.go).
	help    chan *part
	workers int
	wg      sync.WaitGroup
}

func newBatcher(be backend, cfg Batching) *batcher {
	b := &batcher{be: be, max: cfg.MaxBatchSize, delay: cfg.MaxQueueDelay}
	if b.max <= 1 {
		return b
	}
	workers := cfg.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	b.queue, b.stop = make(chan *call, 4*b.max), make(chan struct{})
	b.fill, b.help, b.workers = make(chan struct{}, 1), make(chan *part, workers*workers), workers
	b.fill <- struct{}{}
	for range workers {
		b.wg.Add(1)
		go b.loop()
	}
	return b
}

func (b *batcher) enabled() bool { return b.queue != nil }

func (b *batcher) close() {
	if b.enabled() {
		close(b.stop)
		b.wg.Wait()
	}
}

// predict runs x through the model, in a batch when batching is on and
// the request is smaller than a batch.
func (b *batcher) predict(ctx context.Context, x []float64, rows int, out []float64) error {
	if !b.enabled() || rows >= b.max {
		return b.be.Predict(x, rows, out)
	}
	c := callPool.Get().(*call)
	c.x, c.rows, c.out, c.err = x, rows, out, nil
	select {
	case b.queue <- c:
	case <-ctx.Done():
		callPool.Put(c)
		return ctx.Err()
	case <-b.stop:
		callPool.Put(c)
		return errClosed
	}
	// The batch writes into out: wait for it even when ctx ends.
	<-c.done
	err := c.err
	c.x, c.out = nil, nil
	callPool.Put(c)
	return err
}

func (b *batcher) loop() {
	defer b.wg.Done()
	var (
		batch []*call
		next  *call
		xbuf  []float64
		obuf  []float64
	)
	parts := newParts(b.workers)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	k, f := b.be.Outputs(), b.be.Features()
	for {
		// Idle: compute another worker's rows, or take the gathering turn.
		select {
		case p := <-b.help:
			p.run(b.be)
			continue
		case <-b.fill:
		case <-b.stop:
			return
		}
		var first *call
		for first == nil {
			select {
			case first = <-b.queue:
			case p := <-b.help:
				p.run(b.be)
			case <-b.stop:
				b.fill <- struct{}{}
				return
			}
		}
		batch = append(batch[:0], first)
		rows := first.rows
		if b.delay > 0 {
			timer.Reset(b.delay)
		}
	fill:
		for rows < b.max {
			var c *call
			select {
			case c = <-b.queue:
			default:
				if b.delay <= 0 {
					break fill
				}
				select {
				case c = <-b.queue:
				case <-timer.C:
					break fill
				}
			}
			if rows+c.rows > b.max {
				next = c
				break
			}
			batch = append(batch, c)
			rows += c.rows
		}
		if b.delay > 0 && !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		b.fill <- struct{}{}
		if len(batch) == 1 {
			first.err = b.split(parts, first.x, first.rows, first.out)
			first.done <- struct{}{}
			next = b.alone(parts, next)
			continue
		}
		xbuf, obuf = grow(xbuf, rows*f), grow(obuf, rows*k)
		off := 0
		for _, c := range batch {
			copy(xbuf[off*f:], c.x)
			off += c.rows
		}
		err := b.split(parts, xbuf, rows, obuf)
		off = 0
		for _, c := range batch {
			if err == nil {
				copy(c.out, obuf[off*k:(off+c.rows)*k])
			} else {
				// One bad request fails only itself.
				c.err = b.be.Predict(c.x, c.rows, c.out)
			}
			off += c.rows
			c.done <- struct{}{}
		}
		next = b.alone(parts, next)
	}
}

// alone answers a call that did not fit the batch gathered with it, on its
// own: it was taken off the queue, so holding it for a later gathering turn
// could wait forever on a gatherer blocked on an empty queue.
func (b *batcher) alone(parts []part, c *call) *call {
	if c != nil {
		c.err = b.split(parts, c.x, c.rows, c.out)
		c.done <- struct{}{}
	}
	return nil
}

func grow(s []float64, n int) []float64 {
	if cap(s) < n {
		return make([]float64, n)
	}
	return s[:n]
}

package events

import (
	"container/list"
	"context"
	"sync"
)

// Deduper remembers the most recent event IDs it has seen, to skip repeats
// within one process. It complements, and does not replace, idempotent
// handlers: it forgets old IDs and knows nothing of other processes. It is
// safe for concurrent use.
type Deduper struct {
	mu    sync.Mutex
	size  int
	order *list.List // front is the most recent; values are IDs
	ids   map[string]*list.Element
}

// NewDeduper remembers up to size IDs (at least 1).
func NewDeduper(size int) *Deduper {
	size = max(size, 1)
	return &Deduper{size: size, order: list.New(), ids: make(map[string]*list.Element, size)}
}

// Seen reports whether id was seen before, and records it as seen.
func (d *Deduper) Seen(id string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if el, ok := d.ids[id]; ok {
		d.order.MoveToFront(el)
		return true
	}
	d.ids[id] = d.order.PushFront(id)
	if d.order.Len() > d.size {
		oldest := d.order.Back()
		d.order.Remove(oldest)
		delete(d.ids, oldest.Value.(string))
	}
	return false
}

// Forget removes id, so it counts as new again.
func (d *Deduper) Forget(id string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if el, ok := d.ids[id]; ok {
		d.order.Remove(el)
		delete(d.ids, id)
	}
}

// Len is the number of IDs remembered.
func (d *Deduper) Len() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.order.Len()
}

// Wrap returns a handler that skips events whose ID was already handled
// successfully and otherwise calls h; a failed event is forgotten so its
// redelivery is handled again.
func (d *Deduper) Wrap(h func(context.Context, Event) error) func(context.Context, Event) error {
	return func(ctx context.Context, e Event) error {
		if e.ID == "" {
			return h(ctx, e)
		}
		if d.Seen(e.ID) {
			return nil
		}
		if err := h(ctx, e); err != nil {
			d.Forget(e.ID)
			return err
		}
		return nil
	}
}

package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/protobuf/proto"
)

// Cache mirrors every message under a prefix in memory, kept current by an
// etcd watch (like a Kubernetes informer), so reads cost no etcd round
// trip. Writes still go to etcd with revision checks; a writer reports the
// revision it committed with Observe, and later reads wait until the watch
// has caught up to it, so a process always reads its own writes.
type Cache[T proto.Message] struct {
	st     *Store
	prefix string
	newMsg func() T
	log    *slog.Logger

	mu      sync.RWMutex
	items   map[string]cached[T]
	rev     int64 // the revision the cache reflects
	wrote   int64 // the newest revision written through this process
	changed chan struct{}
	ready   chan struct{}
	once    sync.Once
}

type cached[T proto.Message] struct {
	msg T
	rev int64
}

// NewCache returns a cache of the messages under prefix; call Run.
func NewCache[T proto.Message](st *Store, prefix string, newMsg func() T, log *slog.Logger) *Cache[T] {
	return &Cache[T]{st: st, prefix: prefix, newMsg: newMsg, log: log,
		items: map[string]cached[T]{}, changed: make(chan struct{}), ready: make(chan struct{})}
}

// Run lists the prefix and follows its changes until ctx is done,
// re-listing when the watch breaks or falls behind compaction.
func (c *Cache[T]) Run(ctx context.Context) error {
	for ctx.Err() == nil {
		if err := c.sync(ctx); err != nil && ctx.Err() == nil {
			c.log.Warn("cache watch restarts", "prefix", c.prefix, "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(200 * time.Millisecond):
			}
		}
	}
	return nil
}

func (c *Cache[T]) sync(ctx context.Context) error {
	resp, err := c.st.cli.Get(ctx, c.prefix, clientv3.WithPrefix())
	if err != nil {
		return fmt.Errorf("list %s: %w", c.prefix, err)
	}
	items := make(map[string]cached[T], len(resp.Kvs))
	for _, kv := range resp.Kvs {
		m := c.newMsg()
		if err := proto.Unmarshal(kv.Value, m); err != nil {
			return fmt.Errorf("decode %s: %w", kv.Key, err)
		}
		items[string(kv.Key)] = cached[T]{msg: m, rev: kv.ModRevision}
	}
	c.mu.Lock()
	c.items, c.rev = items, resp.Header.Revision
	c.broadcastLocked()
	c.mu.Unlock()
	c.once.Do(func() { close(c.ready) })

	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	wch := c.st.cli.Watch(wctx, c.prefix, clientv3.WithPrefix(), clientv3.WithRev(resp.Header.Revision+1), clientv3.WithProgressNotify())
	for wr := range wch {
		if err := wr.Err(); err != nil {
			return fmt.Errorf("watch %s: %w", c.prefix, err)
		}
		if err := c.apply(wr); err != nil {
			return err
		}
	}
	return errors.New("watch closed")
}

func (c *Cache[T]) apply(wr clientv3.WatchResponse) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	rev := c.rev
	for _, ev := range wr.Events {
		key := string(ev.Kv.Key)
		if ev.Type == clientv3.EventTypeDelete {
			delete(c.items, key)
		} else {
			m := c.newMsg()
			if err := proto.Unmarshal(ev.Kv.Value, m); err != nil {
				return fmt.Errorf("decode %s: %w", key, err)
			}
			c.items[key] = cached[T]{msg: m, rev: ev.Kv.ModRevision}
		}
		rev = max(rev, ev.Kv.ModRevision)
	}
	if wr.IsProgressNotify() {
		rev = max(rev, wr.Header.Revision)
	}
	c.rev = rev
	c.broadcastLocked()
	return nil
}

func (c *Cache[T]) broadcastLocked() {
	close(c.changed)
	c.changed = make(chan struct{})
}

// Observe records a revision this process committed under the prefix (or
// anywhere: the cache only waits for its watch to pass it).
func (c *Cache[T]) Observe(rev int64) {
	c.mu.Lock()
	c.wrote = max(c.wrote, rev)
	c.mu.Unlock()
}

// Ready is closed once the first listing is loaded.
func (c *Cache[T]) Ready() <-chan struct{} { return c.ready }

// errBehind means the watch did not catch up in time; callers fall back
// to reading etcd.
var errBehind = errors.New("cache behind")

// wait blocks until the cache reflects every write this process observed.
func (c *Cache[T]) wait(ctx context.Context) error {
	deadline := time.NewTimer(2 * time.Second)
	defer deadline.Stop()
	asked := false
	for {
		c.mu.RLock()
		ok, ch := c.rev >= c.wrote, c.changed
		c.mu.RUnlock()
		if ok {
			return nil
		}
		if !asked {
			// The watch may carry no event of ours: ask for a progress
			// notification so the revision moves on.
			_ = c.st.cli.RequestProgress(ctx)
			asked = true
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		case <-deadline.C:
			return errBehind
		}
	}
}

// Peek returns a copy of the cached message without waiting for this
// process's writes: for read-modify-write cycles whose commit checks the
// revision anyway (a stale read just fails the commit and is retried).
func (c *Cache[T]) Peek(ctx context.Context, key string) (T, int64, error) {
	select {
	case <-c.ready:
		c.mu.RLock()
		it, ok := c.items[key]
		c.mu.RUnlock()
		if ok {
			return proto.Clone(it.msg).(T), it.rev, nil
		}
	default:
	}
	// Not cached (or not loaded): etcd says whether it exists.
	m := c.newMsg()
	rev, err := c.st.Get(ctx, key, m)
	return m, rev, err
}

// View calls fn with the cached message at key, without copying it, as
// Peek reads it (etcd when it is not cached): fn must only read it and
// keep nothing of it. It is for the hot paths that read a field or two.
func (c *Cache[T]) View(ctx context.Context, key string, fn func(T)) error {
	select {
	case <-c.ready:
		c.mu.RLock()
		it, ok := c.items[key]
		if ok {
			fn(it.msg)
		}
		c.mu.RUnlock()
		if ok {
			return nil
		}
	default:
	}
	m := c.newMsg()
	if _, err := c.st.Get(ctx, key, m); err != nil {
		return err
	}
	fn(m)
	return nil
}

// Has reports whether key exists, as Peek would, without copying its
// message when it is cached.
func (c *Cache[T]) Has(ctx context.Context, key string) (bool, error) {
	select {
	case <-c.ready:
		c.mu.RLock()
		_, ok := c.items[key]
		c.mu.RUnlock()
		if ok {
			return true, nil
		}
	default:
	}
	_, err := c.st.Get(ctx, key, c.newMsg())
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// Get returns a copy of the message at key and its revision; it reads etcd
// when the cache is not loaded or lags behind this process's writes.
func (c *Cache[T]) Get(ctx context.Context, key string) (T, int64, error) {
	select {
	case <-c.ready:
		if err := c.wait(ctx); err == nil {
			c.mu.RLock()
			it, ok := c.items[key]
			c.mu.RUnlock()
			if !ok {
				var zero T
				return zero, 0, ErrNotFound
			}
			return proto.Clone(it.msg).(T), it.rev, nil
		} else if ctx.Err() != nil {
			var zero T
			return zero, 0, err
		}
	default:
	}
	m := c.newMsg()
	rev, err := c.st.Get(ctx, key, m)
	return m, rev, err
}

// Cached returns the message at key as the cache holds it, without
// copying and without reading etcd: loaded is false until the first
// listing, ok whether the key exists. The message is shared and never
// changed by the cache (a change replaces it): the caller must only read
// it, and may keep it. It is for lookups that must not reach etcd on a
// miss (a guessed token id).
func (c *Cache[T]) Cached(key string) (msg T, ok, loaded bool) {
	select {
	case <-c.ready:
	default:
		return msg, false, false
	}
	c.mu.RLock()
	it, ok := c.items[key]
	c.mu.RUnlock()
	return it.msg, ok, true
}

// Each calls fn with every cached message (shared, read-only) in no
// order; loaded is false until the first listing.
func (c *Cache[T]) Each(fn func(key string, msg T)) (loaded bool) {
	select {
	case <-c.ready:
	default:
		return false
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	for k, it := range c.items {
		fn(k, it.msg)
	}
	return true
}

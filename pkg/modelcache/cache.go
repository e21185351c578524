package modelcache

import (
	"cmp"
	"container/list"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// The names inside the cache directory and an entry's directory.
const (
	entriesDir   = "sha256"
	tmpDir       = "tmp"
	artifactName = "artifact"
	unpackedName = "unpacked"
	unpackingPfx = "unpacking-"
)

// Options configure a cache.
type Options struct {
	// Dir holds the cache; it is created when missing.
	Dir string
	// MaxBytes bounds what the entries hold; 0 means unbounded.
	MaxBytes int64
	// Registerer, when set, gets the cache's metrics.
	Registerer prometheus.Registerer
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Cache is a node's artifact cache; its methods are safe for concurrent use.
type Cache struct {
	dir string
	max int64
	now func() time.Time
	m   *metrics

	mu       sync.Mutex
	entries  map[string]*entry // by digest
	lru      *list.List        // of *entry, most recently used first
	bytes    int64
	inflight map[string]*download
}

// entry is one artifact.
type entry struct {
	digest string
	size   int64 // artifact and unpacked tree
	refs   int   // handles held
	// verified: this process hashed the artifact (it downloaded it, or
	// checked what a previous process left).
	verified bool
	elem     *list.Element
	// unpackMu serialises the unpacking of the entry's archive.
	unpackMu sync.Mutex
}

// download is one Get's fetch that others of the same digest wait on.
type download struct {
	done    chan struct{}
	err     error
	waiters int // Gets waiting on it (under Cache.mu)
}

// Open opens (or creates) the cache in o.Dir: it removes downloads a
// previous process left in progress, and indexes the entries there,
// least recently used last.
func Open(o Options) (*Cache, error) {
	if o.Dir == "" {
		return nil, errors.New("modelcache: no directory")
	}
	if o.MaxBytes < 0 {
		return nil, fmt.Errorf("modelcache: the bound must not be negative, got %d", o.MaxBytes)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	c := &Cache{dir: o.Dir, max: o.MaxBytes, now: o.Now, entries: map[string]*entry{}, lru: list.New(),
		inflight: map[string]*download{}}
	if err := os.RemoveAll(filepath.Join(o.Dir, tmpDir)); err != nil {
		return nil, fmt.Errorf("modelcache: remove partial downloads: %w", err)
	}
	for _, d := range []string{tmpDir, entriesDir} {
		if err := os.MkdirAll(filepath.Join(o.Dir, d), 0o755); err != nil {
			return nil, fmt.Errorf("modelcache: %w", err)
		}
	}
	if err := c.scan(); err != nil {
		return nil, err
	}
	m, err := newMetrics(o.Registerer, c.Bytes)
	if err != nil {
		return nil, err
	}
	c.m = m
	c.mu.Lock()
	c.evictLocked(c.max)
	c.mu.Unlock()
	return c, nil
}

// scan indexes the entries on disk, most recently used first.
func (c *Cache) scan() error {
	root := filepath.Join(c.dir, entriesDir)
	des, err := os.ReadDir(root)
	if err != nil {
		return fmt.Errorf("modelcache: %w", err)
	}
	type found struct {
		e    *entry
		used time.Time
	}
	var fs []found
	for _, de := range des {
		p := filepath.Join(root, de.Name())
		if !de.IsDir() || validDigest(de.Name()) != nil {
			_ = os.RemoveAll(p)
			continue
		}
		st, err := os.Stat(filepath.Join(p, artifactName))
		if err != nil || !st.Mode().IsRegular() {
			_ = os.RemoveAll(p)
			continue
		}
		// Unpacked trees were written without a sync: made again on demand.
		removeUnpacking(p)
		info, err := os.Stat(p)
		if err != nil {
			continue
		}
		fs = append(fs, found{e: &entry{digest: de.Name(), size: st.Size()}, used: info.ModTime()})
	}
	sort.SliceStable(fs, func(i, j int) bool { return fs[i].used.After(fs[j].used) })
	for _, f := range fs {
		f.e.elem = c.lru.PushBack(f.e)
		c.entries[f.e.digest] = f.e
		c.bytes += f.e.size
	}
	return nil
}

// Get returns a handle on the entry of digest (lowercase hex sha256),
// calling fetch to write the artifact when the cache lacks it. size is
// the artifact's size in bytes (negative: unknown). Concurrent Gets of
// one digest call fetch once; the others wait for it (or for ctx).
// Release the handle when done with the entry.
func (c *Cache) Get(ctx context.Context, digest string, size int64, fetch func(w io.Writer) error) (*Handle, error) {
	if err := validDigest(digest); err != nil {
		return nil, err
	}
	if c.max > 0 && size > c.max {
		return nil, fmt.Errorf("modelcache: sha256:%s is %d bytes, above the cache's bound of %d bytes", digest, size, c.max)
	}
	for {
		c.mu.Lock()
		e := c.entries[digest]
		if e != nil && e.verified {
			c.holdLocked(e)
			c.mu.Unlock()
			c.m.hits.Inc()
			return c.handle(e), nil
		}
		if d := c.inflight[digest]; d != nil {
			d.waiters++
			c.mu.Unlock()
			select {
			case <-d.done:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			// The download's own caller may have given up: try again,
			// unless the download itself failed.
			if d.err != nil && !(isContextErr(d.err) && ctx.Err() == nil) {
				return nil, d.err
			}
			continue
		}
		d := &download{done: make(chan struct{})}
		c.inflight[digest] = d
		if e != nil {
			// Left by a previous process: hashed once before use.
			c.holdLocked(e)
			c.mu.Unlock()
			ok := c.verify(e)
			c.mu.Lock()
			delete(c.inflight, digest)
			if ok {
				e.verified = true
			} else if e.refs--; !c.dropLocked(e) {
				d.err = fmt.Errorf("modelcache: sha256:%s on disk does not match its digest and cannot be removed", digest)
			}
			close(d.done)
			c.mu.Unlock()
			switch {
			case ok:
				c.m.hits.Inc()
				return c.handle(e), nil
			case d.err != nil:
				return nil, d.err
			}
			continue // download it again
		}
		if c.max > 0 && size > 0 {
			c.evictLocked(c.max - size)
		}
		c.mu.Unlock()
		c.m.misses.Inc()
		e, err := c.download(digest, size, fetch)
		c.mu.Lock()
		delete(c.inflight, digest)
		if err == nil {
			c.entries[digest] = e
			e.elem = c.lru.PushFront(e)
			c.bytes += e.size
			c.holdLocked(e)
			c.evictLocked(c.max)
		}
		d.err = err
		close(d.done)
		c.mu.Unlock()
		if err != nil {
			return nil, err
		}
		return c.handle(e), nil
	}
}

// verify hashes an entry a previous process left: its data may not have
// reached the disk before a crash (downloads are not synced).
func (c *Cache) verify(e *entry) bool {
	f, err := os.Open(filepath.Join(c.entryDir(e.digest), artifactName))
	if err != nil {
		return false
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return false
	}
	return hex.EncodeToString(h.Sum(nil)) == e.digest
}

// download fetches an artifact into tmp/, verifies it and moves it into
// sha256/.
func (c *Cache) download(digest string, size int64, fetch func(w io.Writer) error) (*entry, error) {
	tmp, err := os.MkdirTemp(filepath.Join(c.dir, tmpDir), digest[:16]+"-")
	if err != nil {
		return nil, fmt.Errorf("modelcache: %w", err)
	}
	defer func() { _ = os.RemoveAll(tmp) }()
	f, err := os.Create(filepath.Join(tmp, artifactName))
	if err != nil {
		return nil, fmt.Errorf("modelcache: %w", err)
	}
	if err := preallocate(f, size); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("modelcache: room for sha256:%s (%d bytes): %w", digest, size, err)
	}
	st := newStages(f)
	cw := &countingWriter{w: st, add: c.m.downloaded.Add}
	t0 := c.now()
	// No sync: an entry is hashed again before its first use after a
	// restart, which costs less than a sync on every download.
	err = fetch(cw)
	got, werr := st.sum()
	if cerr := f.Close(); err == nil {
		err = cmp.Or(werr, cerr)
	}
	c.m.downloadSeconds.Add(max(0, c.now().Sub(t0).Seconds()))
	if err != nil {
		return nil, fmt.Errorf("modelcache: fetch sha256:%s: %w", digest, err)
	}
	if size >= 0 && cw.n != size {
		return nil, fmt.Errorf("modelcache: sha256:%s: the download wrote %d bytes, want %d; the entry is discarded", digest, cw.n, size)
	}
	if got != digest {
		return nil, fmt.Errorf("modelcache: the download of sha256:%s wrote bytes whose sha256 is %s; the entry is discarded", digest, got)
	}
	if err := os.Chmod(filepath.Join(tmp, artifactName), 0o444); err != nil {
		return nil, fmt.Errorf("modelcache: %w", err)
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return nil, fmt.Errorf("modelcache: %w", err)
	}
	dst := c.entryDir(digest)
	_ = os.RemoveAll(dst) // not indexed, so not whole (Open removed or indexed it)
	if err := os.Rename(tmp, dst); err != nil {
		return nil, fmt.Errorf("modelcache: %w", err)
	}
	return &entry{digest: digest, size: cw.n, verified: true}, nil
}

// holdLocked takes a reference on e and marks it used.
func (c *Cache) holdLocked(e *entry) {
	e.refs++
	c.touchLocked(e)
}

// touchLocked marks e most recently used, in memory and on disk.
func (c *Cache) touchLocked(e *entry) {
	c.lru.MoveToFront(e.elem)
	t := c.now()
	_ = os.Chtimes(c.entryDir(e.digest), t, t)
}

// evictLocked removes least recently used entries that no handle holds
// until the entries hold at most limit bytes (nothing when unbounded).
func (c *Cache) evictLocked(limit int64) {
	if c.max == 0 {
		return
	}
	for el := c.lru.Back(); el != nil && c.bytes > limit; {
		e := el.Value.(*entry)
		el = el.Prev()
		if e.refs > 0 {
			continue
		}
		if c.dropLocked(e) {
			c.m.evictions.Inc()
		}
	}
}

// dropLocked removes e, which no handle holds, from disk and the index.
func (c *Cache) dropLocked(e *entry) bool {
	if err := removeTree(c.entryDir(e.digest)); err != nil {
		return false
	}
	c.lru.Remove(e.elem)
	delete(c.entries, e.digest)
	c.bytes -= e.size
	return true
}

// Bytes is what the entries hold.
func (c *Cache) Bytes() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.bytes
}

// Has reports whether the cache holds digest.
func (c *Cache) Has(digest string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.entries[digest] != nil
}

// Dir is the cache's directory.
func (c *Cache) Dir() string { return c.dir }

func (c *Cache) entryDir(digest string) string { return filepath.Join(c.dir, entriesDir, digest) }

// validDigest checks a lowercase hex sha256.
func validDigest(d string) error {
	if len(d) != sha256.Size*2 {
		return fmt.Errorf("modelcache: %q is not a sha256 (64 lowercase hex digits)", d)
	}
	for _, r := range d {
		if (r < '0' || r > '9') && (r < 'a' || r > 'f') {
			return fmt.Errorf("modelcache: %q is not a sha256 (64 lowercase hex digits)", d)
		}
	}
	return nil
}

func isContextErr(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// countingWriter counts what passes through it.
type countingWriter struct {
	w   io.Writer
	n   int64
	add func(float64)
}

func (cw *countingWriter) Write(p []byte) (int, error) {
	n, err := cw.w.Write(p)
	cw.n += int64(n)
	cw.add(float64(n))
	return n, err
}

package modelcache

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
)

func digestOf(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// artifact is test content of n bytes, distinct per seed.
func artifact(seed byte, n int) []byte { return bytes.Repeat([]byte{seed}, n) }

// source counts fetches of its bytes.
type source struct {
	b []byte
	n atomic.Int32
}

func (s *source) fetch(w io.Writer) error {
	s.n.Add(1)
	_, err := w.Write(s.b)
	return err
}

func open(t *testing.T, dir string, max int64, reg prometheus.Registerer) *Cache {
	t.Helper()
	c, err := Open(Options{Dir: dir, MaxBytes: max, Registerer: reg})
	require.NoError(t, err)
	return c
}

func get(t *testing.T, c *Cache, s *source) *Handle {
	t.Helper()
	h, err := c.Get(context.Background(), digestOf(s.b), int64(len(s.b)), s.fetch)
	require.NoError(t, err)
	return h
}

func gauge(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() == name {
			m := mf.GetMetric()[0]
			if m.GetCounter() != nil {
				return m.GetCounter().GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

func TestMissThenHit(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := open(t, t.TempDir(), 0, reg)
	s := &source{b: []byte("weights")}
	h := get(t, c, s)
	got, err := os.ReadFile(h.Path())
	require.NoError(t, err)
	require.Equal(t, s.b, got)
	require.Equal(t, digestOf(s.b), h.Digest())
	st, err := os.Stat(h.Path())
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o444), st.Mode().Perm(), "tasks get the entry read-only")
	h.Release()
	h.Release() // a second release does nothing

	h2 := get(t, c, s)
	defer h2.Release()
	require.Equal(t, h.Path(), h2.Path())
	require.EqualValues(t, 1, s.n.Load(), "a hit does not fetch")
	require.Equal(t, 1.0, gauge(t, reg, "bmaas_model_cache_misses_total"))
	require.Equal(t, 1.0, gauge(t, reg, "bmaas_model_cache_hits_total"))
	require.Equal(t, float64(len(s.b)), gauge(t, reg, "bmaas_model_cache_bytes"))
	require.Equal(t, float64(len(s.b)), gauge(t, reg, "bmaas_model_cache_download_bytes_total"))
}

func TestDownloadSecondsCountTheFetch(t *testing.T) {
	reg := prometheus.NewRegistry()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c, err := Open(Options{Dir: t.TempDir(), Registerer: reg, Now: func() time.Time { return now }})
	require.NoError(t, err)
	b := []byte("weights")
	h, err := c.Get(context.Background(), digestOf(b), int64(len(b)), func(w io.Writer) error {
		now = now.Add(3 * time.Second) // the fetch takes 3 s on the cache's clock
		_, err := w.Write(b)
		return err
	})
	require.NoError(t, err)
	h.Release()
	get(t, c, &source{b: b}).Release()
	require.Equal(t, 3.0, gauge(t, reg, "bmaas_model_cache_download_seconds_total"), "a hit adds nothing")
}

func TestConcurrentGetsFetchOnce(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := open(t, t.TempDir(), 0, reg)
	b := artifact(7, 1<<16)
	d := digestOf(b)
	gate := make(chan struct{})
	var fetches atomic.Int32
	fetch := func(w io.Writer) error {
		fetches.Add(1)
		<-gate
		_, err := w.Write(b)
		return err
	}
	var wg sync.WaitGroup
	hs := make([]*Handle, 10)
	errs := make([]error, 10)
	for i := range 10 {
		wg.Go(func() { hs[i], errs[i] = c.Get(context.Background(), d, int64(len(b)), fetch) })
	}
	// Every other Get waits on the one download before it is let go.
	require.Eventually(t, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		dl := c.inflight[d]
		return dl != nil && dl.waiters == 9
	}, 10*time.Second, time.Millisecond)
	close(gate)
	wg.Wait()
	for i := range 10 {
		require.NoError(t, errs[i])
		require.Equal(t, hs[i].Path(), hs[0].Path())
		hs[i].Release()
	}
	require.EqualValues(t, 1, fetches.Load())
	require.Equal(t, 1.0, gauge(t, reg, "bmaas_model_cache_misses_total"))
	require.Equal(t, 9.0, gauge(t, reg, "bmaas_model_cache_hits_total"))
}

func TestDigestMismatchIsDiscarded(t *testing.T) {
	dir := t.TempDir()
	reg := prometheus.NewRegistry()
	c := open(t, dir, 0, reg)
	want := []byte("the real weights")
	d := digestOf(want)
	_, err := c.Get(context.Background(), d, int64(len(want)), func(w io.Writer) error {
		_, err := w.Write([]byte("tampered weights"))
		return err
	})
	require.Error(t, err)
	require.Contains(t, err.Error(), "sha256 is "+digestOf([]byte("tampered weights")))
	require.Contains(t, err.Error(), "discarded")
	require.False(t, c.Has(d))
	require.NoDirExists(t, filepath.Join(dir, entriesDir, d))
	left, err := os.ReadDir(filepath.Join(dir, tmpDir))
	require.NoError(t, err)
	require.Empty(t, left, "nothing of the bad download stays")
	require.Equal(t, 0.0, gauge(t, reg, "bmaas_model_cache_bytes"))

	// A short download is discarded too, and the right bytes then enter.
	_, err = c.Get(context.Background(), d, int64(len(want)), func(w io.Writer) error {
		_, err := w.Write(want[:4])
		return err
	})
	require.ErrorContains(t, err, "wrote 4 bytes, want 16")
	h := get(t, c, &source{b: want})
	h.Release()
	require.True(t, c.Has(d))
}

func TestFetchErrorReachesWaiters(t *testing.T) {
	c := open(t, t.TempDir(), 0, nil)
	d := digestOf([]byte("x"))
	gate := make(chan struct{})
	boom := errors.New("registry unavailable")
	var fetches atomic.Int32
	fetch := func(io.Writer) error { fetches.Add(1); <-gate; return boom }
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i := range 3 {
		wg.Go(func() { _, errs[i] = c.Get(context.Background(), d, 1, fetch) })
	}
	require.Eventually(t, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		dl := c.inflight[d]
		return dl != nil && dl.waiters == 2
	}, 10*time.Second, time.Millisecond)
	close(gate)
	wg.Wait()
	for _, err := range errs {
		require.ErrorIs(t, err, boom)
	}
	require.EqualValues(t, 1, fetches.Load())
}

func TestCancelledDownloadIsRetriedByWaiter(t *testing.T) {
	c := open(t, t.TempDir(), 0, nil)
	b := []byte("weights")
	d := digestOf(b)
	gate := make(chan struct{})
	first := true
	fetch := func(w io.Writer) error {
		if first {
			first = false
			<-gate
			return context.Canceled // the first caller's task stopped
		}
		_, err := w.Write(b)
		return err
	}
	done := make(chan error, 1)
	go func() {
		_, err := c.Get(context.Background(), d, int64(len(b)), fetch)
		done <- err
	}()
	require.Eventually(t, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.inflight[d] != nil
	}, 10*time.Second, time.Millisecond)
	waiter := make(chan *Handle, 1)
	go func() {
		h, err := c.Get(context.Background(), d, int64(len(b)), fetch)
		if err != nil {
			t.Error(err)
		}
		waiter <- h
	}()
	require.Eventually(t, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		dl := c.inflight[d]
		return dl != nil && dl.waiters == 1
	}, 10*time.Second, time.Millisecond)
	close(gate)
	require.ErrorIs(t, <-done, context.Canceled)
	h := <-waiter
	require.NotNil(t, h)
	h.Release()
}

func TestLRUEvictionSkipsHeldEntries(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := open(t, t.TempDir(), 300, reg)
	a, b, cc, d := &source{b: artifact(1, 100)}, &source{b: artifact(2, 100)}, &source{b: artifact(3, 100)}, &source{b: artifact(4, 100)}
	ha := get(t, c, a) // the oldest, held throughout
	get(t, c, b).Release()
	get(t, c, cc).Release()
	hd := get(t, c, d) // evicts b: least recently used of those not held
	require.True(t, c.Has(digestOf(a.b)))
	require.False(t, c.Has(digestOf(b.b)))
	require.True(t, c.Has(digestOf(cc.b)))
	require.True(t, c.Has(digestOf(d.b)))
	require.NoDirExists(t, filepath.Join(c.Dir(), entriesDir, digestOf(b.b)))
	require.Equal(t, 1.0, gauge(t, reg, "bmaas_model_cache_evictions_total"))
	require.Equal(t, 300.0, gauge(t, reg, "bmaas_model_cache_bytes"))

	// A release, then a hit of c: d is now the least recently used of
	// those not held, and the next entry evicts it.
	hd.Release()
	get(t, c, cc).Release()
	get(t, c, b).Release()
	require.True(t, c.Has(digestOf(a.b)))
	require.True(t, c.Has(digestOf(cc.b)))
	require.False(t, c.Has(digestOf(d.b)))
	require.True(t, c.Has(digestOf(b.b)))
	ha.Release()
}

func TestHeldEntriesMayExceedTheBound(t *testing.T) {
	c := open(t, t.TempDir(), 150, nil)
	ha := get(t, c, &source{b: artifact(1, 100)})
	hb := get(t, c, &source{b: artifact(2, 100)})
	require.EqualValues(t, 200, c.Bytes(), "held entries stay")
	hb.Release()
	require.EqualValues(t, 100, c.Bytes(), "a release above the bound evicts")
	ha.Release()

	_, err := c.Get(context.Background(), digestOf(artifact(3, 200)), 200, (&source{b: artifact(3, 200)}).fetch)
	require.ErrorContains(t, err, "above the cache's bound of 150 bytes")
}

func TestRestartRescans(t *testing.T) {
	dir := t.TempDir()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { now = now.Add(time.Minute); return now }
	c, err := Open(Options{Dir: dir, Now: clock})
	require.NoError(t, err)
	a, b := &source{b: artifact(1, 100)}, &source{b: artifact(2, 100)}
	get(t, c, b).Release()
	get(t, c, a).Release() // a is the more recent
	// A download cut short by a crash, and an unpacking too.
	require.NoError(t, os.WriteFile(filepath.Join(dir, tmpDir, "partial"), []byte("half"), 0o644))
	require.NoError(t, os.Mkdir(filepath.Join(dir, entriesDir, digestOf(a.b), unpackingPfx+"1"), 0o755))

	reg := prometheus.NewRegistry()
	c2, err := Open(Options{Dir: dir, Registerer: reg, MaxBytes: 150})
	require.NoError(t, err)
	left, err := os.ReadDir(filepath.Join(dir, tmpDir))
	require.NoError(t, err)
	require.Empty(t, left)
	require.NoDirExists(t, filepath.Join(dir, entriesDir, digestOf(a.b), unpackingPfx+"1"))
	require.True(t, c2.Has(digestOf(a.b)), "the recent entry stays")
	require.False(t, c2.Has(digestOf(b.b)), "the least recently used one goes to fit the bound")
	require.Equal(t, 100.0, gauge(t, reg, "bmaas_model_cache_bytes"))
	h := get(t, c2, a)
	h.Release()
	require.EqualValues(t, 1, a.n.Load(), "the entry survived the restart")
	require.Equal(t, 1.0, gauge(t, reg, "bmaas_model_cache_hits_total"))
}

func TestEntryCorruptedBeforeRestartIsDownloadedAgain(t *testing.T) {
	dir := t.TempDir()
	c := open(t, dir, 0, nil)
	a := &source{b: artifact(1, 100)}
	h := get(t, c, a)
	unpacked, err := h.Unpacked(func(_, dst string) error { return os.WriteFile(filepath.Join(dst, "f"), []byte("x"), 0o644) })
	require.NoError(t, err)
	h.Release()
	// What a crash before the data reached the disk leaves: the entry,
	// its bytes wrong.
	p := filepath.Join(dir, entriesDir, digestOf(a.b), artifactName)
	require.NoError(t, os.Chmod(p, 0o644))
	require.NoError(t, os.WriteFile(p, artifact(0, 100), 0o644))

	reg := prometheus.NewRegistry()
	c2 := open(t, dir, 0, reg)
	require.NoDirExists(t, unpacked, "an unpacked tree is made again on demand")
	require.Equal(t, 100.0, gauge(t, reg, "bmaas_model_cache_bytes"))
	h2 := get(t, c2, a)
	got, err := os.ReadFile(h2.Path())
	require.NoError(t, err)
	require.Equal(t, a.b, got)
	require.EqualValues(t, 2, a.n.Load(), "the corrupt entry was downloaded again")
	require.Equal(t, 1.0, gauge(t, reg, "bmaas_model_cache_misses_total"))
	h2.Release()
	get(t, c2, a).Release() // verified now: a plain hit
	require.EqualValues(t, 2, a.n.Load())
	require.Equal(t, 1.0, gauge(t, reg, "bmaas_model_cache_hits_total"))
}

func TestEntryLeftByPreviousProcessIsVerifiedNotDownloaded(t *testing.T) {
	dir := t.TempDir()
	a := &source{b: artifact(1, 1<<16)}
	get(t, open(t, dir, 0, nil), a).Release()
	c := open(t, dir, 0, nil)
	d := digestOf(a.b)
	var wg sync.WaitGroup
	hs := make([]*Handle, 5)
	for i := range 5 {
		wg.Go(func() { hs[i] = get(t, c, a) })
	}
	wg.Wait()
	for _, h := range hs {
		require.Equal(t, d, h.Digest())
		h.Release()
	}
	require.EqualValues(t, 1, a.n.Load(), "verified, not downloaded")
	c.mu.Lock()
	require.True(t, c.entries[d].verified)
	c.mu.Unlock()
}

func TestUnpackedOncePerEntry(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := open(t, t.TempDir(), 0, reg)
	s := &source{b: []byte("archive")}
	h1, h2 := get(t, c, s), get(t, c, s)
	var unpacks atomic.Int32
	unpack := func(src, dst string) error {
		unpacks.Add(1)
		b, err := os.ReadFile(src)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, "model.pt"), []byte(strings.ToUpper(string(b))), 0o644)
	}
	_, err := h1.Unpacked(func(string, string) error { return errors.New("corrupt archive") })
	require.ErrorContains(t, err, "corrupt archive")
	d1, err := h1.Unpacked(unpack)
	require.NoError(t, err)
	d2, err := h2.Unpacked(unpack)
	require.NoError(t, err)
	require.Equal(t, d1, d2)
	require.EqualValues(t, 1, unpacks.Load())
	got, err := os.ReadFile(filepath.Join(d1, "model.pt"))
	require.NoError(t, err)
	require.Equal(t, "ARCHIVE", string(got))
	require.Equal(t, float64(len("archive")+len("ARCHIVE")), gauge(t, reg, "bmaas_model_cache_bytes"))
	h1.Release()
	h2.Release()
}

func TestBadInput(t *testing.T) {
	_, err := Open(Options{})
	require.Error(t, err)
	_, err = Open(Options{Dir: t.TempDir(), MaxBytes: -1})
	require.ErrorContains(t, err, "negative")
	c := open(t, t.TempDir(), 0, nil)
	_, err = c.Get(context.Background(), "ABC", 1, (&source{}).fetch)
	require.ErrorContains(t, err, "not a sha256")
	// The metrics register once per registry.
	reg := prometheus.NewRegistry()
	open(t, t.TempDir(), 0, reg)
	_, err = Open(Options{Dir: t.TempDir(), Registerer: reg})
	require.ErrorContains(t, err, "register metrics")
}

func TestStagesWriteAndHashWhatCame(t *testing.T) {
	var file bytes.Buffer
	s := newStages(&file)
	var want bytes.Buffer
	for i := range 20 {
		p := artifact(byte(i), 1000+i)
		want.Write(p)
		_, err := s.Write(p)
		require.NoError(t, err)
		p[0] = 0xff // the caller may reuse its buffer at once
	}
	got, err := s.sum()
	require.NoError(t, err)
	require.Equal(t, digestOf(want.Bytes()), got)
	require.Equal(t, want.Bytes(), file.Bytes())
}

// failingFile fails its writes from the nth on.
type failingFile struct{ n int }

func (f *failingFile) Write(p []byte) (int, error) {
	if f.n--; f.n < 0 {
		return 0, errors.New("no space left on device")
	}
	return len(p), nil
}

func TestStagesStopAtAFileError(t *testing.T) {
	s := newStages(&failingFile{n: 2})
	var err error
	for range 100 {
		if _, err = s.Write(artifact(1, 100)); err != nil {
			break
		}
	}
	require.ErrorContains(t, err, "no space left", "a write after the file failed says so")
	_, err = s.sum()
	require.ErrorContains(t, err, "no space left")
}

func TestDownloadWithoutRoomFailsBeforeFetching(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("preallocation is Linux's fallocate")
	}
	c := open(t, t.TempDir(), 0, nil)
	s := &source{b: artifact(5, 1000)}
	// Far more than any disk holds: refused before a byte is fetched.
	_, err := c.Get(context.Background(), digestOf(s.b), 1<<60, s.fetch)
	require.ErrorContains(t, err, "room for sha256:")
	require.Equal(t, int32(0), s.n.Load(), "nothing was fetched")
	require.False(t, c.Has(digestOf(s.b)))
	// The same artifact with its true size downloads.
	h := get(t, c, s)
	h.Release()
}

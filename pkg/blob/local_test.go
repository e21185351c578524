package blob

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func newStore(t testing.TB) *Local {
	t.Helper()
	s, err := NewLocal(t.TempDir())
	require.NoError(t, err)
	return s
}

func randBytes(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return b
}

// stagedFiles lists the files left in the staging directory.
func stagedFiles(t *testing.T, s *Local) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(s.Dir(), tempDir))
	require.NoError(t, err)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"small", []byte("hello, blob")},
		{"large", randBytes(t, 3<<20+17)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newStore(t)
			ctx := t.Context()
			w, err := s.NewWriter(ctx, 0)
			require.NoError(t, err)
			for chunk := range slices(tt.data, 64<<10) {
				_, err := w.Write(chunk)
				require.NoError(t, err)
			}
			want := Digest(tt.data)
			require.Equal(t, want, w.Digest())
			require.Equal(t, int64(len(tt.data)), w.Size())
			info, err := w.Commit(ctx, want)
			require.NoError(t, err)
			require.Equal(t, want, info.Digest)
			require.Equal(t, int64(len(tt.data)), info.Size)
			require.NoError(t, w.Abort(), "abort after commit is a no-op")

			rc, oinfo, err := s.Open(ctx, want)
			require.NoError(t, err)
			got, err := io.ReadAll(rc)
			require.NoError(t, err)
			require.NoError(t, rc.Close())
			require.True(t, bytes.Equal(tt.data, got))
			require.Equal(t, info.Size, oinfo.Size)

			sinfo, err := s.Stat(ctx, want)
			require.NoError(t, err)
			require.Equal(t, info.Size, sinfo.Size)
			require.FileExists(t, filepath.Join(s.Dir(), "sha256", want[:2], want))
			require.Empty(t, stagedFiles(t, s))
		})
	}
}

// slices yields b in chunks of n bytes.
func slices(b []byte, n int) func(func([]byte) bool) {
	return func(yield func([]byte) bool) {
		for len(b) > 0 {
			k := min(n, len(b))
			if !yield(b[:k]) {
				return
			}
			b = b[k:]
		}
	}
}

func TestOpenSeek(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	info, err := Put(t.Context(), s, strings.NewReader("0123456789"), "", 0)
	require.NoError(t, err)
	rc, _, err := s.Open(t.Context(), info.Digest)
	require.NoError(t, err)
	defer rc.Close()
	_, err = rc.Seek(6, io.SeekStart)
	require.NoError(t, err)
	rest, err := io.ReadAll(rc)
	require.NoError(t, err)
	require.Equal(t, "6789", string(rest))
}

func TestDigestMismatchLeavesNothing(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := t.Context()
	w, err := s.NewWriter(ctx, 0)
	require.NoError(t, err)
	_, err = w.Write([]byte("actual content"))
	require.NoError(t, err)
	wrong := Digest([]byte("other content"))
	_, err = w.Commit(ctx, wrong)
	require.ErrorIs(t, err, ErrDigestMismatch)

	require.Empty(t, stagedFiles(t, s))
	_, err = s.Stat(ctx, wrong)
	require.ErrorIs(t, err, ErrNotFound)
	_, err = s.Stat(ctx, Digest([]byte("actual content")))
	require.ErrorIs(t, err, ErrNotFound)
	n := 0
	require.NoError(t, s.Walk(ctx, func(Info) error { n++; return nil }))
	require.Zero(t, n)
	_, err = w.Commit(ctx, "")
	require.ErrorIs(t, err, ErrClosed)
}

func TestLimit(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		limit   int64
		size    int
		wantErr error
	}{
		{"under", 100, 99, nil},
		{"exact", 100, 100, nil},
		{"over", 100, 101, ErrTooLarge},
		{"unlimited", 0, 1 << 20, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newStore(t)
			data := randBytes(t, tt.size)
			_, err := Put(t.Context(), s, bytes.NewReader(data), "", tt.limit)
			if tt.wantErr == nil {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, tt.wantErr)
			require.Empty(t, stagedFiles(t, s))
			_, err = s.Stat(t.Context(), Digest(data))
			require.ErrorIs(t, err, ErrNotFound)
		})
	}
}

func TestWriteAfterLimitKeepsFailing(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	w, err := s.NewWriter(t.Context(), 4)
	require.NoError(t, err)
	defer w.Abort()
	_, err = w.Write([]byte("12345"))
	require.ErrorIs(t, err, ErrTooLarge)
	_, err = w.Write([]byte("1"))
	require.ErrorIs(t, err, ErrTooLarge)
	_, err = w.Commit(t.Context(), "")
	require.ErrorIs(t, err, ErrTooLarge)
	require.Empty(t, stagedFiles(t, s))
}

func TestDedup(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := t.Context()
	data := []byte("same bytes")
	first, err := Put(ctx, s, bytes.NewReader(data), "", 0)
	require.NoError(t, err)
	// Age the blob: a dedup commit refreshes its ModTime.
	old := time.Now().Add(-time.Hour)
	require.NoError(t, os.Chtimes(filepath.Join(s.Dir(), blobsDir, first.Digest[:2], first.Digest), old, old))
	second, err := Put(ctx, s, bytes.NewReader(data), Digest(data), 0)
	require.NoError(t, err)
	require.Equal(t, first.Digest, second.Digest)
	require.Equal(t, first.Size, second.Size)
	require.True(t, second.ModTime.After(old.Add(time.Minute)))
	info, err := s.Stat(ctx, first.Digest)
	require.NoError(t, err)
	require.True(t, info.ModTime.After(old.Add(time.Minute)))
	require.Empty(t, stagedFiles(t, s))
	n := 0
	require.NoError(t, s.Walk(ctx, func(Info) error { n++; return nil }))
	require.Equal(t, 1, n)
}

func TestConcurrentWritersSameContent(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := t.Context()
	data := randBytes(t, 256<<10)
	want := Digest(data)
	const writers = 16
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for range writers {
		wg.Go(func() {
			_, err := Put(ctx, s, bytes.NewReader(data), want, 0)
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	rc, info, err := s.Open(ctx, want)
	require.NoError(t, err)
	defer rc.Close()
	got, err := io.ReadAll(rc)
	require.NoError(t, err)
	require.Equal(t, int64(len(data)), info.Size)
	require.Equal(t, want, Digest(got))
	require.Empty(t, stagedFiles(t, s))
}

func TestCleanTemp(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := t.Context()
	stale, err := s.NewWriter(ctx, 0)
	require.NoError(t, err)
	_, err = stale.Write([]byte("crashed upload"))
	require.NoError(t, err)
	fresh, err := s.NewWriter(ctx, 0)
	require.NoError(t, err)
	defer fresh.Abort()

	names := stagedFiles(t, s)
	require.Len(t, names, 2)
	old := time.Now().Add(-2 * time.Hour)
	stalePath := stale.(*localWriter).f.Name()
	require.NoError(t, os.Chtimes(stalePath, old, old))
	// A foreign file in tmp is left alone.
	foreign := filepath.Join(s.Dir(), tempDir, "keep-me")
	require.NoError(t, os.WriteFile(foreign, nil, 0o644))
	require.NoError(t, os.Chtimes(foreign, old, old))

	n, err := s.CleanTemp(time.Hour)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	require.NoFileExists(t, stalePath)
	require.FileExists(t, foreign)
	require.Len(t, stagedFiles(t, s), 2) // fresh + foreign
	require.NoError(t, stale.Abort(), "abort of a cleaned file is fine")
}

func TestWalk(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := t.Context()
	want := map[string]int64{}
	for i := range 20 {
		data := bytes.Repeat([]byte{byte(i)}, i+1)
		info, err := Put(ctx, s, bytes.NewReader(data), "", 0)
		require.NoError(t, err)
		want[info.Digest] = info.Size
	}
	// Junk in the tree is skipped.
	require.NoError(t, os.WriteFile(filepath.Join(s.Dir(), blobsDir, "junk"), nil, 0o644))
	require.NoError(t, os.MkdirAll(filepath.Join(s.Dir(), blobsDir, "zz"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(s.Dir(), blobsDir, "zz", "nope"), nil, 0o644))

	got := map[string]int64{}
	require.NoError(t, s.Walk(ctx, func(i Info) error {
		got[i.Digest] = i.Size
		require.False(t, i.ModTime.IsZero())
		return nil
	}))
	require.Equal(t, want, got)

	stop := errors.New("stop")
	calls := 0
	err := s.Walk(ctx, func(Info) error { calls++; return stop })
	require.ErrorIs(t, err, stop)
	require.Equal(t, 1, calls)

	for d := range want {
		require.NoError(t, s.Delete(ctx, d))
		require.NoError(t, s.Delete(ctx, d), "delete is idempotent")
	}
	require.NoError(t, s.Walk(ctx, func(i Info) error { return errors.New("unexpected blob " + i.Digest) }))
}

func TestInvalidDigest(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := t.Context()
	valid := Digest([]byte("x"))
	tests := []string{
		"",
		"../x",
		"../../etc/passwd",
		"sha256:" + valid,
		strings.ToUpper(valid),
		valid[:63],
		valid + "0",
		"/" + valid[1:],
		valid[:62] + "..",
		strings.Repeat("g", 64),
	}
	for _, d := range tests {
		t.Run(d, func(t *testing.T) {
			require.False(t, ValidDigest(d))
			_, _, err := s.Open(ctx, d)
			require.ErrorIs(t, err, ErrInvalidDigest)
			_, err = s.Stat(ctx, d)
			require.ErrorIs(t, err, ErrInvalidDigest)
			require.ErrorIs(t, s.Delete(ctx, d), ErrInvalidDigest)
			if d != "" {
				_, err = Put(ctx, s, strings.NewReader("x"), d, 0)
				require.ErrorIs(t, err, ErrInvalidDigest)
			}
		})
	}
	require.True(t, ValidDigest(valid))
	require.Equal(t, EmptyDigest, Digest(nil))
	_, err := s.Stat(ctx, valid)
	require.ErrorIs(t, err, ErrNotFound)
	_, _, err = s.Open(ctx, valid)
	require.ErrorIs(t, err, ErrNotFound)
}

// TestStreamingMemory checks that a large write is not buffered in memory.
func TestStreamingMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 64 MiB")
	}
	s := newStore(t)
	const size = 64 << 20
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	info, err := Put(t.Context(), s, io.LimitReader(zeroReader{}, size), "", 0)
	require.NoError(t, err)
	runtime.ReadMemStats(&after)
	require.Equal(t, int64(size), info.Size)
	allocated := after.TotalAlloc - before.TotalAlloc
	require.Less(t, allocated, uint64(4<<20), "allocated %d bytes for a %d byte blob", allocated, size)
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

func BenchmarkWrite(b *testing.B) {
	for _, size := range []int{64 << 10, 4 << 20} {
		b.Run(byteSize(size), func(b *testing.B) {
			s := newStore(b)
			chunk := randBytes(b, 32<<10)
			b.SetBytes(int64(size))
			ctx := b.Context()
			i := 0
			for b.Loop() {
				w, err := s.NewWriter(ctx, 0)
				require.NoError(b, err)
				// Distinct content per iteration so nothing is deduplicated.
				_, err = w.Write([]byte{byte(i), byte(i >> 8), byte(i >> 16), byte(i >> 24)})
				require.NoError(b, err)
				for written := 4; written < size; written += len(chunk) {
					_, err = w.Write(chunk[:min(len(chunk), size-written)])
					require.NoError(b, err)
				}
				_, err = w.Commit(ctx, "")
				require.NoError(b, err)
				i++
			}
		})
	}
}

func byteSize(n int) string {
	if n >= 1<<20 {
		return strconv.Itoa(n>>20) + "MiB"
	}
	return strconv.Itoa(n>>10) + "KiB"
}

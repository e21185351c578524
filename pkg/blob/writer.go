package blob

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// localWriter streams a blob to a staged file while hashing it, so memory use
// does not depend on the blob's size.
type localWriter struct {
	store *Local
	limit int64

	mu     sync.Mutex
	f      *os.File
	h      hash.Hash
	size   int64
	err    error // sticky write error
	closed bool  // committed or aborted
}

func newLocalWriter(l *Local, f *os.File, limit int64) *localWriter {
	return &localWriter{store: l, limit: limit, f: f, h: sha256.New()}
}

// Write appends p. A write that would pass the limit writes nothing and fails
// with ErrTooLarge; so does every later write and Commit.
func (w *localWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return 0, ErrClosed
	}
	if w.err != nil {
		return 0, w.err
	}
	if w.limit > 0 && w.size+int64(len(p)) > w.limit {
		w.err = fmt.Errorf("%w: more than %d bytes", ErrTooLarge, w.limit)
		return 0, w.err
	}
	n, err := w.f.Write(p)
	w.h.Write(p[:n])
	w.size += int64(n)
	if err != nil {
		w.err = fmt.Errorf("write staged blob: %w", err)
		return n, w.err
	}
	return n, nil
}

func (w *localWriter) Size() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.size
}

func (w *localWriter) Digest() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.digest()
}

func (w *localWriter) digest() string {
	return hex.EncodeToString(w.h.Sum(nil))
}

// Commit verifies, syncs and renames the staged file into place. Whatever the
// outcome, the writer is closed afterwards and the staged file is gone.
func (w *localWriter) Commit(ctx context.Context, expected string) (Info, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return Info{}, ErrClosed
	}
	info, err := w.commit(ctx, expected)
	if err != nil {
		_ = w.abort()
		return Info{}, err
	}
	w.closed = true
	return info, nil
}

func (w *localWriter) commit(ctx context.Context, expected string) (Info, error) {
	if w.err != nil {
		return Info{}, w.err
	}
	if err := ctx.Err(); err != nil {
		return Info{}, err
	}
	digest := w.digest()
	if expected != "" {
		if err := checkDigest(expected); err != nil {
			return Info{}, err
		}
		if expected != digest {
			return Info{}, fmt.Errorf("%w: expected %s, got %s", ErrDigestMismatch, expected, digest)
		}
	}
	target := w.store.path(digest)
	if st, err := os.Stat(target); err == nil && st.Size() == w.size {
		// Already stored: drop the staged copy, and refresh the blob's
		// ModTime so a collector that spares recent blobs spares it too.
		if err := w.abort(); err != nil {
			return Info{}, err
		}
		modTime := st.ModTime()
		if now := time.Now(); os.Chtimes(target, now, now) == nil {
			modTime = now
		}
		return Info{Digest: digest, Size: st.Size(), ModTime: modTime}, nil
	}
	if err := w.f.Sync(); err != nil {
		return Info{}, fmt.Errorf("sync staged blob: %w", err)
	}
	if err := w.f.Close(); err != nil {
		return Info{}, fmt.Errorf("close staged blob: %w", err)
	}
	shard := filepath.Dir(target)
	if err := os.MkdirAll(shard, 0o755); err != nil {
		return Info{}, fmt.Errorf("create blob shard: %w", err)
	}
	// Renaming over an identical blob written concurrently is harmless.
	if err := os.Rename(w.f.Name(), target); err != nil {
		return Info{}, fmt.Errorf("commit blob %s: %w", digest, err)
	}
	if err := syncDir(shard); err != nil {
		return Info{}, fmt.Errorf("sync blob shard: %w", err)
	}
	st, err := os.Stat(target)
	if err != nil {
		return Info{}, fmt.Errorf("stat committed blob %s: %w", digest, err)
	}
	return Info{Digest: digest, Size: st.Size(), ModTime: st.ModTime()}, nil
}

// Abort removes the staged file. It is a no-op after Commit or Abort.
func (w *localWriter) Abort() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil
	}
	return w.abort()
}

func (w *localWriter) abort() error {
	w.closed = true
	_ = w.f.Close() // may already be closed by a failed commit
	if err := os.Remove(w.f.Name()); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove staged blob: %w", err)
	}
	return nil
}

package blob

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

const (
	blobsDir  = "sha256"
	tempDir   = "tmp"
	tempStart = "upload-"
)

// Local is a Store on a local directory. It is safe for concurrent use, also
// by several processes sharing the directory.
type Local struct {
	dir string
}

var _ Store = (*Local)(nil)

// NewLocal opens (creating if needed) a store rooted at dir.
func NewLocal(dir string) (*Local, error) {
	if dir == "" {
		return nil, errors.New("blob store directory is required")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("blob store directory %s: %w", dir, err)
	}
	for _, d := range []string{filepath.Join(abs, blobsDir), filepath.Join(abs, tempDir)} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("create blob store directory: %w", err)
		}
	}
	return &Local{dir: abs}, nil
}

// Dir is the store's root directory.
func (l *Local) Dir() string { return l.dir }

// path is the file of a valid digest.
func (l *Local) path(digest string) string {
	return filepath.Join(l.dir, blobsDir, digest[:2], digest)
}

// NewWriter stages a new blob in dir/tmp.
func (l *Local) NewWriter(ctx context.Context, limit int64) (Writer, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f, err := os.CreateTemp(filepath.Join(l.dir, tempDir), tempStart+"*")
	if err != nil {
		return nil, fmt.Errorf("stage blob: %w", err)
	}
	return newLocalWriter(l, f, limit), nil
}

// Open opens a committed blob for reading.
func (l *Local) Open(ctx context.Context, digest string) (io.ReadSeekCloser, Info, error) {
	if err := checkDigest(digest); err != nil {
		return nil, Info{}, err
	}
	if err := ctx.Err(); err != nil {
		return nil, Info{}, err
	}
	f, err := os.Open(l.path(digest))
	if err != nil {
		return nil, Info{}, notFound(digest, err)
	}
	st, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return nil, Info{}, fmt.Errorf("stat blob %s: %w", digest, err)
	}
	return f, Info{Digest: digest, Size: st.Size(), ModTime: st.ModTime()}, nil
}

// Stat returns a committed blob's Info.
func (l *Local) Stat(ctx context.Context, digest string) (Info, error) {
	if err := checkDigest(digest); err != nil {
		return Info{}, err
	}
	if err := ctx.Err(); err != nil {
		return Info{}, err
	}
	st, err := os.Stat(l.path(digest))
	if err != nil {
		return Info{}, notFound(digest, err)
	}
	return Info{Digest: digest, Size: st.Size(), ModTime: st.ModTime()}, nil
}

// Delete removes a committed blob; a missing blob is not an error.
func (l *Local) Delete(ctx context.Context, digest string) error {
	if err := checkDigest(digest); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := os.Remove(l.path(digest)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("delete blob %s: %w", digest, err)
	}
	return nil
}

// Walk calls fn for every committed blob. Files that are not named by a valid
// digest in the right shard are skipped.
func (l *Local) Walk(ctx context.Context, fn func(Info) error) error {
	root := filepath.Join(l.dir, blobsDir)
	shards, err := os.ReadDir(root)
	if err != nil {
		return fmt.Errorf("list blob shards: %w", err)
	}
	for _, shard := range shards {
		if !shard.IsDir() || len(shard.Name()) != 2 {
			continue
		}
		entries, err := os.ReadDir(filepath.Join(root, shard.Name()))
		if err != nil {
			return fmt.Errorf("list blob shard %s: %w", shard.Name(), err)
		}
		for _, e := range entries {
			if err := ctx.Err(); err != nil {
				return err
			}
			name := e.Name()
			if !e.Type().IsRegular() || !ValidDigest(name) || !strings.HasPrefix(name, shard.Name()) {
				continue
			}
			st, err := e.Info()
			if errors.Is(err, fs.ErrNotExist) {
				continue // deleted while walking
			}
			if err != nil {
				return fmt.Errorf("stat blob %s: %w", name, err)
			}
			if err := fn(Info{Digest: name, Size: st.Size(), ModTime: st.ModTime()}); err != nil {
				return err
			}
		}
	}
	return nil
}

// CleanTemp removes staged files last modified more than olderThan ago, such
// as those left by a crash, and returns how many it removed. Run it at startup
// or periodically with an age well above the longest expected upload.
func (l *Local) CleanTemp(olderThan time.Duration) (int, error) {
	dir := filepath.Join(l.dir, tempDir)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0, fmt.Errorf("list staged blobs: %w", err)
	}
	cutoff := time.Now().Add(-olderThan)
	removed := 0
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), tempStart) || !e.Type().IsRegular() {
			continue
		}
		st, err := e.Info()
		if err != nil || !st.ModTime().Before(cutoff) {
			continue
		}
		if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			return removed, fmt.Errorf("remove staged blob %s: %w", e.Name(), err)
		}
		removed++
	}
	return removed, nil
}

func notFound(digest string, err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: %s", ErrNotFound, digest)
	}
	return fmt.Errorf("open blob %s: %w", digest, err)
}

// syncDir makes a rename or create in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

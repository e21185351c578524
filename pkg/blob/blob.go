package blob

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"time"
)

// Sentinel errors; match them with errors.Is.
var (
	// ErrNotFound means no blob with the digest is stored.
	ErrNotFound = errors.New("blob not found")
	// ErrDigestMismatch means the content does not hash to the expected digest.
	ErrDigestMismatch = errors.New("blob digest mismatch")
	// ErrTooLarge means a write went past the writer's size limit.
	ErrTooLarge = errors.New("blob too large")
	// ErrInvalidDigest means a string is not a lowercase hex sha256 digest.
	ErrInvalidDigest = errors.New("invalid blob digest")
	// ErrClosed means a writer was used after Commit or Abort.
	ErrClosed = errors.New("blob writer closed")
)

// Info describes a stored blob.
type Info struct {
	Digest string
	Size   int64
	// ModTime is when the blob was last committed (a dedup commit refreshes
	// it). A garbage collector should spare blobs committed recently, since
	// an upload may commit a blob just before the reference to it is saved.
	ModTime time.Time
}

// Store is a content-addressed blob store.
type Store interface {
	// NewWriter stages a new blob. limit > 0 caps its size (writes beyond fail
	// with ErrTooLarge).
	NewWriter(ctx context.Context, limit int64) (Writer, error)
	// Open returns a reader of the blob and its Info, or ErrNotFound.
	Open(ctx context.Context, digest string) (io.ReadSeekCloser, Info, error)
	// Stat returns the blob's Info, or ErrNotFound.
	Stat(ctx context.Context, digest string) (Info, error)
	// Delete removes the blob; deleting a missing blob is not an error.
	Delete(ctx context.Context, digest string) error
	// Walk calls fn for every stored blob, in no particular order, and stops
	// at the first error fn returns.
	Walk(ctx context.Context, fn func(Info) error) error
}

// Writer stages one blob.
type Writer interface {
	io.Writer
	// Size is the number of bytes written so far.
	Size() int64
	// Digest of what was written so far (lowercase hex sha256).
	Digest() string
	// Commit verifies expected (if non-empty; else trusts the computed
	// digest), syncs and atomically renames into place. Committing content
	// that already exists is fine (dedup). On ErrDigestMismatch nothing is
	// left behind.
	Commit(ctx context.Context, expected string) (Info, error)
	// Abort removes the staged data; it is a no-op after Commit.
	Abort() error
}

// EmptyDigest is the digest of the empty blob.
const EmptyDigest = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

// ValidDigest reports whether s is a lowercase hex sha256 digest.
func ValidDigest(s string) bool {
	if len(s) != sha256.Size*2 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// Digest returns the lowercase hex sha256 digest of b.
func Digest(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func checkDigest(d string) error {
	if !ValidDigest(d) {
		return fmt.Errorf("%w: %q", ErrInvalidDigest, d)
	}
	return nil
}

// Put streams r into s as one blob, verifying expected when it is non-empty.
// limit > 0 caps the blob's size. The staged data is removed on any error.
func Put(ctx context.Context, s Store, r io.Reader, expected string, limit int64) (Info, error) {
	if expected != "" {
		if err := checkDigest(expected); err != nil {
			return Info{}, err
		}
	}
	w, err := s.NewWriter(ctx, limit)
	if err != nil {
		return Info{}, err
	}
	defer func() { _ = w.Abort() }()
	if _, err := io.Copy(w, contextReader{ctx: ctx, r: r}); err != nil {
		return Info{}, fmt.Errorf("copy blob: %w", err)
	}
	return w.Commit(ctx, expected)
}

// contextReader stops a long copy once ctx is done.
type contextReader struct {
	ctx context.Context
	r   io.Reader
}

func (c contextReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

package traineragent

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/bmaas/bmaas/pkg/modelcache"
)

// TestCachedModelUnpackedAndBound: a held archive entry unpacks once into
// a tree its tasks share, a sandbox binds the entry's directory for a
// path inside it (nothing for a path outside the cache), and the end of
// the task releases the entry.
func TestCachedModelUnpackedAndBound(t *testing.T) {
	t.Parallel()
	src := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(src, "model.pt"), []byte("weights"), 0o644))
	arch := filepath.Join(t.TempDir(), "model.tar.gz")
	require.NoError(t, writeTarGz(arch, src, nil))
	b, err := os.ReadFile(arch)
	require.NoError(t, err)
	sum := sha256.Sum256(b)

	cfg := DefaultConfig()
	cfg.WorkDir = t.TempDir()
	// Room for the archive, not for its unpacked tree too.
	c, err := modelcache.Open(modelcache.Options{Dir: cfg.modelCacheDir(), MaxBytes: int64(len(b))})
	require.NoError(t, err)
	w := &worker{s: &Service{cfg: cfg, cache: c}, dir: filepath.Join(cfg.WorkDir, "job", "rank-0-attempt-1")}
	h, err := c.Get(context.Background(), hex.EncodeToString(sum[:]), int64(len(b)), func(dst io.Writer) error {
		_, err := io.Copy(dst, bytes.NewReader(b))
		return err
	})
	require.NoError(t, err)
	w.models.hold(h)

	dir, err := w.unpackedModel(h.Path())
	require.NoError(t, err)
	got, err := os.ReadFile(filepath.Join(dir, "model.pt"))
	require.NoError(t, err)
	require.Equal(t, "weights", string(got))
	again, err := w.unpackedModel(h.Path())
	require.NoError(t, err)
	require.Equal(t, dir, again)
	require.Equal(t, h.Dir(), w.modelDir(h.Path()))
	require.Equal(t, h.Dir(), w.modelDir(dir))
	require.Empty(t, w.modelDir(filepath.Join(w.dir, "model")))
	_, err = w.unpackedModel(filepath.Join(w.dir, "model"))
	require.ErrorContains(t, err, "not a model this task holds")

	// Held, the entry outlives the cache's bound; released, it goes.
	require.True(t, c.Has(h.Digest()))
	w.models.release()
	require.False(t, c.Has(h.Digest()))
	require.Nil(t, w.models.byPath(h.Path()))
}

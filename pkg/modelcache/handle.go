package modelcache

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// Handle holds one entry of the cache: the entry is not evicted until
// the handle is released. Its files are read-only: a task must not
// change them.
type Handle struct {
	c    *Cache
	e    *entry
	once sync.Once
}

func (c *Cache) handle(e *entry) *Handle { return &Handle{c: c, e: e} }

// Digest is the entry's sha256 (lowercase hex).
func (h *Handle) Digest() string { return h.e.digest }

// Dir is the entry's directory (what a sandbox binds to show the entry).
func (h *Handle) Dir() string { return h.c.entryDir(h.e.digest) }

// Path is the artifact's file.
func (h *Handle) Path() string { return filepath.Join(h.Dir(), artifactName) }

// Release gives the entry back; the first call counts, later ones do
// nothing. A released entry may be evicted, least recently used first.
func (h *Handle) Release() {
	h.once.Do(func() {
		c := h.c
		c.mu.Lock()
		defer c.mu.Unlock()
		h.e.refs--
		c.touchLocked(h.e)
		c.evictLocked(c.max)
	})
}

// Unpacked returns the directory holding the artifact unpacked: unpack
// (src: the artifact, dst: an empty directory to fill) runs once per
// entry, whoever asks first, and every later caller shares its tree. A
// failed unpack leaves nothing behind and the next caller tries again.
// The tree counts in the cache's bytes, and goes with its entry.
func (h *Handle) Unpacked(unpack func(src, dst string) error) (string, error) {
	e, c := h.e, h.c
	e.unpackMu.Lock()
	defer e.unpackMu.Unlock()
	dst := filepath.Join(h.Dir(), unpackedName)
	if st, err := os.Stat(dst); err == nil && st.IsDir() {
		return dst, nil
	}
	tmp, err := os.MkdirTemp(h.Dir(), unpackingPfx)
	if err != nil {
		return "", fmt.Errorf("modelcache: unpack sha256:%s: %w", e.digest, err)
	}
	if err := unpack(h.Path(), tmp); err != nil {
		_ = removeTree(tmp)
		return "", fmt.Errorf("modelcache: unpack sha256:%s: %w", e.digest, err)
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		_ = removeTree(tmp)
		return "", fmt.Errorf("modelcache: unpack sha256:%s: %w", e.digest, err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		_ = removeTree(tmp)
		return "", fmt.Errorf("modelcache: unpack sha256:%s: %w", e.digest, err)
	}
	n := treeSize(dst)
	c.mu.Lock()
	e.size += n
	c.bytes += n
	c.evictLocked(c.max)
	c.mu.Unlock()
	return dst, nil
}

// treeSize is the bytes of the regular files under dir (0 when absent).
func treeSize(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if d.Type().IsRegular() {
			if info, err := d.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	return n
}

// removeUnpacking removes what a previous process unpacked in an
// entry's directory, finished or not.
func removeUnpacking(entryDir string) {
	des, _ := os.ReadDir(entryDir)
	for _, de := range des {
		if strings.HasPrefix(de.Name(), unpackingPfx) || de.Name() == unpackedName {
			_ = removeTree(filepath.Join(entryDir, de.Name()))
		}
	}
}

// removeTree removes dir, making its directories writable first when
// a tree unpacked read-only resists.
func removeTree(dir string) error {
	if err := os.RemoveAll(dir); err == nil {
		return nil
	}
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			_ = os.Chmod(p, 0o755)
		}
		return nil
	})
	return os.RemoveAll(dir)
}

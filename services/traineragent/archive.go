package traineragent

import (
	"archive/tar"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
)

// emptyFingerprint is the fingerprint of an empty directory.
var emptyFingerprint = hex.EncodeToString(sha256.New().Sum(nil))

// fingerprint hashes the names, sizes and modification times of the
// files below dir, cheaply telling whether anything changed.
func fingerprint(dir string) (string, error) {
	h := sha256.New()
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		_, _ = fmt.Fprintf(h, "%s\x00%d\x00%d\n", rel, fi.Size(), fi.ModTime().UnixNano())
		return nil
	})
	return hex.EncodeToString(h.Sum(nil)), err
}

// listFiles returns the regular files below dir, relative and sorted.
func listFiles(dir string) ([]string, error) {
	var out []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		out = append(out, rel)
		return nil
	})
	sort.Strings(out)
	return out, err
}

// writeTarGz archives the regular files below dir into dst; keep, when
// set, selects the files by relative path.
func writeTarGz(dst, dir string, keep func(rel string) bool) error {
	files, err := listFiles(dir)
	if err != nil {
		return err
	}
	f, err := os.Create(dst)
	if err != nil {
		return err
	}
	gz := gzip.NewWriter(f)
	tw := tar.NewWriter(gz)
	for _, rel := range files {
		if keep != nil && !keep(rel) {
			continue
		}
		if err = addFile(tw, filepath.Join(dir, rel), filepath.ToSlash(rel)); err != nil {
			break
		}
	}
	for _, c := range []io.Closer{tw, gz, f} {
		if cerr := c.Close(); err == nil {
			err = cerr
		}
	}
	return err
}

func addFile(tw *tar.Writer, path, name string) error {
	src, err := os.Open(path)
	if err != nil {
		return err
	}
	defer func() { _ = src.Close() }()
	fi, err := src.Stat()
	if err != nil {
		return err
	}
	hdr, err := tar.FileInfoHeader(fi, "")
	if err != nil {
		return err
	}
	hdr.Name = name
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	_, err = io.CopyN(tw, src, fi.Size())
	return err
}

// extractLimits bound what one archive may unpack to.
type extractLimits struct {
	bytes   int64 // total size of the files
	entries int64 // files and directories
}

// extractTarGz unpacks a tar.gz into dir within lim. Entries that would
// land outside dir (by their name or through a link already in dir),
// links and devices are refused; over a limit it stops before writing
// more than the limit.
func extractTarGz(r io.Reader, dir string, lim extractLimits) error {
	gz, err := gzip.NewReader(r)
	if err != nil {
		return fmt.Errorf("not a tar.gz: %w", err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer func() { _ = root.Close() }()
	tr := tar.NewReader(gz)
	var entries, written int64
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if entries++; entries > lim.entries {
			return fmt.Errorf("archive holds more than %d entries (trainer-agent.max-extract-entries)", lim.entries)
		}
		name := filepath.Clean(filepath.FromSlash(hdr.Name))
		if !filepath.IsLocal(name) {
			return fmt.Errorf("archive entry %q leaves the directory", hdr.Name)
		}
		switch hdr.Typeflag {
		case tar.TypeDir:
			err = root.MkdirAll(name, 0o755)
		case tar.TypeReg:
			if hdr.Size > lim.bytes-written {
				return fmt.Errorf("archive unpacks to more than %d bytes (trainer-agent.max-extract-bytes)", lim.bytes)
			}
			written += hdr.Size
			err = writeFile(root, name, io.LimitReader(tr, hdr.Size), os.FileMode(hdr.Mode).Perm()|0o600)
		default:
			return fmt.Errorf("archive entry %q: only files and directories are allowed", hdr.Name)
		}
		if err != nil {
			return fmt.Errorf("archive entry %q: %w", hdr.Name, err)
		}
	}
}

func writeFile(root *os.Root, name string, r io.Reader, mode os.FileMode) error {
	if err := root.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		return err
	}
	f, err := root.OpenFile(name, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	_, err = io.Copy(f, r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// fetchArchive downloads a tar.gz through a temporary file and unpacks it
// into dir, within the agent's extraction limits.
func (w *worker) fetchArchive(dir string, download func(*os.File) error) error {
	return fetchArchive(dir, extractLimits{bytes: w.s.cfg.MaxExtractBytes, entries: w.s.cfg.MaxExtractEntries}, download)
}

func fetchArchive(dir string, lim extractLimits, download func(*os.File) error) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(dir), ".download-*")
	if err != nil {
		return err
	}
	defer func() {
		_ = f.Close()
		_ = os.Remove(f.Name())
	}()
	if err := download(f); err != nil {
		return err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	if err := extractTarGz(f, dir, lim); err != nil {
		_ = os.RemoveAll(dir) // a partial extraction is of no use: free its space now
		return err
	}
	return nil
}

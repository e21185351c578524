package traineragent

import (
	"archive/zip"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// The magic numbers of the archives a model artifact may be.
var (
	gzipMagic = []byte{0x1f, 0x8b}
	zipMagic  = []byte("PK\x03\x04")
	tarMagic  = []byte("ustar") // at offset 257
)

// prepareModelDir makes dir the serving contract's BMAAS_MODEL_DIR from
// the cached artifact: an archive (zip, tar or tar.gz) is unpacked into
// it; a single file is linked into it as "model" and, when the version
// names its original file, under that name too. The links point at the
// read-only cache entry, which the sandbox shows.
func prepareModelDir(dir, artifact, filename string, lim extractLimits) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.Open(artifact)
	if err != nil {
		return err
	}
	defer func() { _ = f.Close() }()
	head := make([]byte, 512)
	n, err := io.ReadFull(f, head)
	if err != nil && n == 0 && err != io.EOF {
		return err
	}
	head = head[:n]
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	switch {
	case bytes.HasPrefix(head, gzipMagic):
		err = extractTarGz(f, dir, lim)
	case bytes.HasPrefix(head, zipMagic):
		err = extractZip(f, dir, lim)
	case len(head) >= 262 && bytes.Equal(head[257:262], tarMagic):
		err = extractTar(f, dir, lim)
	default:
		return linkModelFile(dir, artifact, filename)
	}
	if err != nil {
		return fmt.Errorf("unpack the model: %w", err)
	}
	return nil
}

// linkModelFile links a single-file artifact into dir.
func linkModelFile(dir, artifact, filename string) error {
	names := []string{"model"}
	if base := filepath.Base(filename); filename != "" && base != "model" && base != "." && base != "/" && !strings.HasPrefix(base, "..") {
		names = append(names, base)
	}
	for _, n := range names {
		if err := os.Symlink(artifact, filepath.Join(dir, n)); err != nil {
			return err
		}
	}
	return nil
}

// extractTar unpacks an uncompressed tar, by the same rules and limits as
// a tar.gz (it passes through gzip's stored blocks).
func extractTar(r io.Reader, dir string, lim extractLimits) error {
	pr, pw := io.Pipe()
	go func() {
		gz, _ := gzip.NewWriterLevel(pw, gzip.NoCompression) // a valid level never fails
		_, err := io.Copy(gz, r)
		if cerr := gz.Close(); err == nil {
			err = cerr
		}
		_ = pw.CloseWithError(err)
	}()
	err := extractTarGz(pr, dir, lim)
	_ = pr.CloseWithError(io.ErrClosedPipe) // stops the copy when extraction ended early
	return err
}

// extractZip unpacks a zip into dir within lim; entries that would land
// outside dir and anything but files and directories are refused.
func extractZip(f *os.File, dir string, lim extractLimits) error {
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	zr, err := zip.NewReader(f, fi.Size())
	if err != nil {
		return fmt.Errorf("not a zip: %w", err)
	}
	if int64(len(zr.File)) > lim.entries {
		return fmt.Errorf("archive holds more than %d entries (trainer-agent.max-extract-entries)", lim.entries)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer func() { _ = root.Close() }()
	var written int64
	for _, e := range zr.File {
		name := filepath.Clean(filepath.FromSlash(e.Name))
		if !filepath.IsLocal(name) {
			return fmt.Errorf("archive entry %q leaves the directory", e.Name)
		}
		mode := e.Mode()
		switch {
		case mode.IsDir():
			err = root.MkdirAll(name, 0o755)
		case mode.IsRegular():
			size := int64(e.UncompressedSize64)
			if size < 0 || size > lim.bytes-written {
				return fmt.Errorf("archive unpacks to more than %d bytes (trainer-agent.max-extract-bytes)", lim.bytes)
			}
			written += size
			err = extractZipFile(root, name, e, size, mode.Perm()|0o600)
		default:
			return fmt.Errorf("archive entry %q: only files and directories are allowed", e.Name)
		}
		if err != nil {
			return fmt.Errorf("archive entry %q: %w", e.Name, err)
		}
	}
	return nil
}

// extractZipFile writes one zip entry, no more than the size it declares.
func extractZipFile(root *os.Root, name string, e *zip.File, size int64, mode os.FileMode) error {
	rc, err := e.Open()
	if err != nil {
		return err
	}
	defer func() { _ = rc.Close() }()
	return writeFile(root, name, io.LimitReader(rc, size), mode)
}

package cli

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
)

// chunkSize is the payload of one streamed message.
const chunkSize = 1 << 20

// localFile is a file to upload: opened, its size known and its sha256
// computed in one streaming pass before anything is sent.
type localFile struct {
	f      *os.File
	name   string
	size   int64
	sha256 string
}

// openUpload opens path, checks that it is a non-empty regular file and
// hashes it, with a progress bar on stderr when it is a terminal.
func openUpload(path string, stderr io.Writer) (*localFile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	switch {
	case fi.IsDir():
		f.Close()
		return nil, usageErrorf("%s is a directory, not a file", path)
	case fi.Size() == 0:
		f.Close()
		return nil, usageErrorf("%s is empty", path)
	}
	h := sha256.New()
	p := newProgress(stderr, "sha256  ", fi.Size(), isTerminal(stderr) && fi.Size() > 8*chunkSize)
	n, err := io.CopyBuffer(io.MultiWriter(h, p), f, make([]byte, chunkSize))
	p.finish()
	if err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return &localFile{f: f, name: filepath.Base(path), size: n, sha256: hex.EncodeToString(h.Sum(nil))}, nil
}

func (l *localFile) Close() error { return l.f.Close() }

// send reads the file in chunks and hands each to send, with a progress
// bar on stderr. A fresh buffer is used per chunk because gRPC may hold a
// sent message. send returning io.EOF means the server closed the stream;
// the caller then learns why from CloseAndRecv.
func (l *localFile) send(stderr io.Writer, send func(chunk []byte) error) error {
	p := newProgress(stderr, "upload  ", l.size, isTerminal(stderr))
	defer p.finish()
	var sent int64
	for {
		buf := make([]byte, chunkSize)
		n, err := io.ReadFull(l.f, buf)
		if n > 0 {
			if serr := send(buf[:n]); serr != nil {
				return serr
			}
			sent += int64(n)
			p.add(int64(n))
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			return fmt.Errorf("read %s: %w", l.name, err)
		}
	}
	if sent != l.size {
		return fmt.Errorf("%s changed while uploading: read %d bytes, hashed %d", l.name, sent, l.size)
	}
	return nil
}

// sink receives a download: into PATH.partial, renamed to PATH once the
// sha256 of the received bytes matches; or straight to stdout for "-".
type sink struct {
	path   string
	tmp    string
	f      *os.File
	out    io.Writer
	h      hash.Hash
	n      int64
	p      *progress
	closed bool
}

func openSink(path string, stdout, stderr io.Writer, size int64) (*sink, error) {
	s := &sink{path: path, h: sha256.New(),
		p: newProgress(stderr, "download", size, isTerminal(stderr))}
	if path == "-" {
		s.out = stdout
		return s, nil
	}
	s.tmp = path + ".partial"
	f, err := os.OpenFile(s.tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, err
	}
	s.f, s.out = f, f
	return s, nil
}

func (s *sink) Write(b []byte) (int, error) {
	n, err := s.out.Write(b)
	s.h.Write(b[:n])
	s.n += int64(n)
	s.p.add(int64(n))
	if err != nil {
		return n, fmt.Errorf("write %s: %w", s.display(), err)
	}
	return n, nil
}

// commit verifies size and digest and moves the file into place.
func (s *sink) commit(wantSHA string, wantSize int64) error {
	s.p.finish()
	got := hex.EncodeToString(s.h.Sum(nil))
	var err error
	switch {
	case wantSize > 0 && s.n != wantSize:
		err = fmt.Errorf("download incomplete: received %d bytes, expected %d", s.n, wantSize)
	case wantSHA != "" && got != wantSHA:
		err = fmt.Errorf("sha256 mismatch: received %s, expected %s", got, wantSHA)
	}
	if err != nil {
		s.abort()
		return err
	}
	if s.f == nil {
		return nil
	}
	if err := s.f.Sync(); err != nil {
		s.abort()
		return fmt.Errorf("write %s: %w", s.tmp, err)
	}
	s.closed = true
	if err := s.f.Close(); err != nil {
		os.Remove(s.tmp)
		return fmt.Errorf("write %s: %w", s.tmp, err)
	}
	if err := os.Rename(s.tmp, s.path); err != nil {
		os.Remove(s.tmp)
		return err
	}
	return nil
}

// abort drops the partial file; harmless after commit.
func (s *sink) abort() {
	s.p.finish()
	if s.f == nil || s.closed {
		return
	}
	s.closed = true
	s.f.Close()
	os.Remove(s.tmp)
}

func (s *sink) display() string {
	if s.f == nil {
		return "stdout"
	}
	return s.path
}

// errMissingHeader is a download stream that did not start with metadata.
var errMissingHeader = errors.New("the server sent data before describing it")

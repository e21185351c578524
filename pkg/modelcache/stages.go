package modelcache

import (
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"io"
	"sync"
	"sync/atomic"
)

// stages is the writer a download writes into: each chunk is copied once
// and then written to the entry's file and hashed (sha256), each in a
// goroutine of its own, so that receiving the next chunk, writing this
// one and hashing it overlap. Writing the file in the receiving goroutine
// made a download the sum of the network's time and the disk's; now it
// takes the longer of the two.
type stages struct {
	h      hash.Hash
	file   chan *chunk
	hash   chan *chunk
	free   chan *chunk
	made   int
	err    atomic.Pointer[error] // the file's first write error
	wg     sync.WaitGroup
	closed bool
}

// chunk is one copy of what the download wrote, shared by both stages:
// the last to finish with it frees it.
type chunk struct {
	b    []byte
	left atomic.Int32
}

// stageDepth is how many chunks may be in the stages before Write waits.
const stageDepth = 4

// newStages writes to f and hashes; sum says the digest and the file's
// error once the download is over.
func newStages(f io.Writer) *stages {
	s := &stages{h: sha256.New(), file: make(chan *chunk, stageDepth), hash: make(chan *chunk, stageDepth),
		free: make(chan *chunk, stageDepth)}
	s.wg.Add(2)
	go func() {
		defer s.wg.Done()
		for c := range s.file {
			if s.err.Load() == nil {
				if _, err := f.Write(c.b); err != nil {
					s.err.Store(&err)
				}
			}
			s.release(c)
		}
	}()
	go func() {
		defer s.wg.Done()
		for c := range s.hash {
			s.h.Write(c.b)
			s.release(c)
		}
	}()
	return s
}

func (s *stages) release(c *chunk) {
	if c.left.Add(-1) == 0 {
		s.free <- c // never blocks: at most stageDepth chunks exist
	}
}

// Write queues a copy of p for both stages. It fails once writing the
// file failed, so that the download stops.
func (s *stages) Write(p []byte) (int, error) {
	if err := s.err.Load(); err != nil {
		return 0, *err
	}
	var c *chunk
	select {
	case c = <-s.free:
	default:
		if s.made < stageDepth {
			c = &chunk{}
			s.made++
		} else {
			c = <-s.free
		}
	}
	c.b = append(c.b[:0], p...)
	c.left.Store(2)
	s.file <- c
	s.hash <- c
	return len(p), nil
}

// sum waits for the queued chunks and returns the digest (lowercase hex)
// and the file's first write error. Write must not be called after it.
func (s *stages) sum() (string, error) {
	if !s.closed {
		s.closed = true
		close(s.file)
		close(s.hash)
		s.wg.Wait()
	}
	if err := s.err.Load(); err != nil {
		return "", *err
	}
	return hex.EncodeToString(s.h.Sum(nil)), nil
}

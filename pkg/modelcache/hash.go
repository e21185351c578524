package modelcache

import (
	"crypto/sha256"
	"encoding/hex"
	"hash"
)

// asyncHash is a sha256 writer that hashes copies of what it is given in
// a goroutine of its own, so that a download hashes while it writes its
// file and receives its next chunk.
type asyncHash struct {
	h    hash.Hash
	bufs chan []byte
	free chan []byte
	done chan struct{}
}

// asyncDepth is how many chunks wait to be hashed before Write blocks.
const asyncDepth = 4

func newAsyncHash() *asyncHash {
	a := &asyncHash{h: sha256.New(), bufs: make(chan []byte, asyncDepth), free: make(chan []byte, asyncDepth+2),
		done: make(chan struct{})}
	go func() {
		defer close(a.done)
		for b := range a.bufs {
			a.h.Write(b)
			select {
			case a.free <- b:
			default:
			}
		}
	}()
	return a
}

// Write queues a copy of p to be hashed; it never fails.
func (a *asyncHash) Write(p []byte) (int, error) {
	var b []byte
	select {
	case b = <-a.free:
	default:
	}
	a.bufs <- append(b[:0], p...)
	return len(p), nil
}

// sum waits for the queued chunks and returns the digest (lowercase
// hex). Write must not be called after it; it must be called once.
func (a *asyncHash) sum() string {
	close(a.bufs)
	<-a.done
	return hex.EncodeToString(a.h.Sum(nil))
}

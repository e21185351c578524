package modelcache

import (
	"context"
	"io"
	"testing"
)

// BenchmarkDownload is a miss of a 256 MiB artifact whose fetch writes
// 1 MiB chunks from memory: what the cache adds to a download (hashing,
// writing the file).
func BenchmarkDownload(b *testing.B) {
	const size = 256 << 20
	chunk := artifact(9, 1<<20)
	full := make([]byte, 0, size)
	for len(full) < size {
		full = append(full, chunk...)
	}
	d := digestOf(full)
	fetch := func(w io.Writer) error {
		for range size / len(chunk) {
			if _, err := w.Write(chunk); err != nil {
				return err
			}
		}
		return nil
	}
	b.SetBytes(size)
	for b.Loop() {
		c, err := Open(Options{Dir: b.TempDir()})
		if err != nil {
			b.Fatal(err)
		}
		h, err := c.Get(context.Background(), d, size, fetch)
		if err != nil {
			b.Fatal(err)
		}
		h.Release()
	}
}

// Package chunkstream drains a chunked download stream (the registry's
// downloads: a first message with the record, then messages carrying
// chunks) into a writer, with a writer that caps how much it holds.
package chunkstream

import (
	"errors"
	"io"
)

// ErrTooLarge is returned by a Limited writer asked to hold more than its cap.
var ErrTooLarge = errors.New("larger than the limit")

// RecvAll writes every chunk recv returns to w until the stream ends.
// recv returns a message's chunk (nil for the record) and the stream error.
func RecvAll(recv func() ([]byte, error), w io.Writer) error {
	for {
		chunk, err := recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if _, err := w.Write(chunk); err != nil {
			return err
		}
	}
}

// Limited is a writer that keeps at most Max bytes in W and fails with
// ErrTooLarge past that.
type Limited struct {
	W   io.Writer
	Max int64
	n   int64
}

func (l *Limited) Write(p []byte) (int, error) {
	if l.n+int64(len(p)) > l.Max {
		return 0, ErrTooLarge
	}
	n, err := l.W.Write(p)
	l.n += int64(n)
	return n, err
}

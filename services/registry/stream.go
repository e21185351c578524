package registry

import (
	"errors"
	"io"

	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
	"github.com/bmaas/bmaas/pkg/apierr"
)

// chunkReader turns a client stream of chunk messages into an io.Reader.
// next returns the next message's chunk, or a trailer digest, or io.EOF.
type chunkReader struct {
	next    func() (chunk []byte, trailer string, isTrailer bool, err error)
	buf     []byte
	trailer string
	done    bool
}

func (c *chunkReader) Read(p []byte) (int, error) {
	for len(c.buf) == 0 {
		if c.done {
			return 0, io.EOF
		}
		chunk, trailer, isTrailer, err := c.next()
		if errors.Is(err, io.EOF) {
			c.done = true
			return 0, io.EOF
		}
		if err != nil {
			return 0, err
		}
		if isTrailer {
			c.trailer = trailer
			c.done = true
			// Nothing may follow the trailer.
			if _, _, _, err := c.next(); !errors.Is(err, io.EOF) {
				if err != nil {
					return 0, err
				}
				return 0, apierr.Invalid("trailer", "must be the last message")
			}
			return 0, io.EOF
		}
		c.buf = chunk
	}
	n := copy(p, c.buf)
	c.buf = c.buf[n:]
	return n, nil
}

// WriteTo lets io.Copy hand whole chunks to the writer without an extra
// copy through an intermediate buffer.
func (c *chunkReader) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for {
		if len(c.buf) > 0 {
			n, err := w.Write(c.buf)
			total += int64(n)
			c.buf = nil
			if err != nil {
				return total, err
			}
		}
		var one [0]byte
		if _, err := c.Read(one[:]); err != nil {
			if errors.Is(err, io.EOF) {
				return total, nil
			}
			return total, err
		}
	}
}

// recvBody builds the body reader of a client stream whose messages carry
// a chunk or a trailer after the header.
func recvBody[M any](recv func() (M, error), part func(M) ([]byte, *registryv1.UploadTrailer, bool)) *chunkReader {
	return &chunkReader{next: func() ([]byte, string, bool, error) {
		msg, err := recv()
		if err != nil {
			return nil, "", false, err
		}
		chunk, trailer, ok := part(msg)
		switch {
		case !ok:
			return nil, "", false, apierr.Invalid("header", "sent twice")
		case trailer != nil:
			return nil, trailer.GetSha256(), true, nil
		}
		return chunk, "", false, nil
	}}
}

package modelcache

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// preallocate reserves size bytes for f before a download writes them:
// a disk without room fails the download at once rather than after it
// wrote what fits, and the file system allocates the blocks in one go.
// A file system that cannot preallocate is no error: the download
// allocates as it writes.
func preallocate(f *os.File, size int64) error {
	if size <= 0 {
		return nil
	}
	err := unix.Fallocate(int(f.Fd()), 0, 0, size)
	if errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EINTR) {
		return nil
	}
	return err
}

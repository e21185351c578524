//go:build !linux

package modelcache

import "os"

// preallocate is a no-op where fallocate is not: the download allocates
// as it writes.
func preallocate(*os.File, int64) error { return nil }

//go:build !amd64 && !arm64

package sandbox

// No filter is built for this architecture: tasks run without one, and
// the agent's "task sandbox" line at start says seccomp false.
const (
	auditArch = 0
	hasX32    = false
)

var archDenied []uint32

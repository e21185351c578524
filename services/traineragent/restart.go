package traineragent

import (
	"fmt"
	"time"
)

// The back-off between restarts of a process server: 1 s, doubled at
// each restart up to 30 s, back to 1 s once the server stayed ready for
// a minute.
const (
	restartFirstDelay = time.Second
	restartMaxDelay   = 30 * time.Second
	restartResetAfter = time.Minute
)

// backoff is the delay before a process server's next start.
type backoff struct {
	next time.Duration
}

// delay returns the wait before the next start of a server that was
// ready for readyFor before it exited, and doubles the one after.
func (b *backoff) delay(readyFor time.Duration) time.Duration {
	if b.next == 0 || readyFor >= restartResetAfter {
		b.next = restartFirstDelay
	}
	d := b.next
	b.next = min(2*b.next, restartMaxDelay)
	return d
}

// restartMessage is the task's message while its server restarts:
// "server exited with status 1; restart 3 in 4s".
func restartMessage(exit string, restart int32, in time.Duration) string {
	return fmt.Sprintf("%s; restart %d in %s", exit, restart, in)
}

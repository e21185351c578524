package traineragent

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Restarts wait 1 s, 2 s, 4 s ... at most 30 s; a minute of readiness
// starts the back-off again from 1 s.
func TestServerRestartBackoff(t *testing.T) {
	t.Parallel()
	var b backoff
	var got []time.Duration
	for range 7 {
		got = append(got, b.delay(time.Second))
	}
	s := time.Second
	require.Equal(t, []time.Duration{s, 2 * s, 4 * s, 8 * s, 16 * s, 30 * s, 30 * s}, got)
	require.Equal(t, s, b.delay(time.Minute))
	require.Equal(t, 2*s, b.delay(59*time.Second))
}

func TestRestartMessage(t *testing.T) {
	t.Parallel()
	require.Equal(t, "server exited with status 1; restart 3 in 4s",
		restartMessage("server exited with status 1", 3, 4*time.Second))
}

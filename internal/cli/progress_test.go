package cli

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// fakeClock advances by step on every reading.
func fakeClock(step time.Duration) func() time.Time {
	t := time.Unix(0, 0)
	return func() time.Time {
		t = t.Add(step)
		return t
	}
}

func TestProgressLine(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	p := newProgress(&buf, "upload", 200<<20, true)
	p.now = fakeClock(time.Second)
	p.start = time.Unix(0, 0)
	p.done = 50 << 20
	line := p.line()
	require.Contains(t, line, "upload [")
	require.Contains(t, line, " 25%  50 MiB / 200 MiB")
	require.Contains(t, line, "MiB/s")
	require.Equal(t, 7, strings.Count(line, "="), line) // 25% of 30 cells
	p.done = 200 << 20
	require.Contains(t, p.line(), "100%  200 MiB / 200 MiB")
	require.Equal(t, barWidth, strings.Count(p.line(), "="))

	unknown := newProgress(&buf, "download", 0, true)
	unknown.done = 1536
	require.True(t, strings.HasPrefix(unknown.line(), "download 1.5 KiB"))
}

func TestProgressThrottlesAndFinishes(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	p := newProgress(&buf, "upload", 100, true)
	p.now = fakeClock(10 * time.Millisecond)
	for range 100 {
		_, err := p.Write([]byte{0})
		require.NoError(t, err)
	}
	draws := strings.Count(buf.String(), "\r")
	require.Greater(t, draws, 1)
	require.Less(t, draws, 50, "redraws are throttled to the interval")
	p.finish()
	p.finish()
	last := buf.String()[strings.LastIndex(buf.String(), "\r"):]
	require.Contains(t, last, "100%  100 B / 100 B")
	require.True(t, strings.HasSuffix(last, "\x1b[K\n"))
	require.Equal(t, 1, strings.Count(buf.String(), "\n"), "finish ends the line once")
}

func TestProgressDisabledIsQuiet(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	p := newProgress(&buf, "upload", 10, false)
	_, _ = p.Write(make([]byte, 10))
	p.finish()
	require.Empty(t, buf.String())
	require.EqualValues(t, 10, p.done)
	require.False(t, isTerminal(&buf))
}

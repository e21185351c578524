package cli

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// progress draws a one-line progress bar for a transfer of total bytes on
// w (stderr), redrawn at most every interval. A disabled progress counts
// but prints nothing, so callers use it unconditionally.
type progress struct {
	w        io.Writer
	label    string
	total    int64 // <= 0 when unknown
	done     int64
	enabled  bool
	interval time.Duration
	now      func() time.Time
	start    time.Time
	last     time.Time
	drawn    bool
}

const barWidth = 30

func newProgress(w io.Writer, label string, total int64, enabled bool) *progress {
	p := &progress{w: w, label: label, total: total, enabled: enabled,
		interval: 100 * time.Millisecond, now: time.Now}
	p.start = p.now()
	return p
}

// Write counts len(b) bytes, so a progress can sit behind an io.TeeReader
// or io.MultiWriter.
func (p *progress) Write(b []byte) (int, error) {
	p.add(int64(len(b)))
	return len(b), nil
}

func (p *progress) add(n int64) {
	p.done += n
	if !p.enabled {
		return
	}
	if t := p.now(); !p.drawn || t.Sub(p.last) >= p.interval {
		p.last = t
		p.draw()
	}
}

// finish draws the final state and ends the line; it is safe to call more
// than once, and on failure too.
func (p *progress) finish() {
	if !p.enabled || p.w == nil {
		return
	}
	p.draw()
	fmt.Fprintln(p.w)
	p.enabled = false
}

func (p *progress) draw() {
	p.drawn = true
	fmt.Fprintf(p.w, "\r%s\x1b[K", p.line())
}

// line renders the current state, e.g.
// "upload [=========>          ]  33%  66 MiB / 200 MiB  120 MiB/s".
func (p *progress) line() string {
	var b strings.Builder
	b.WriteString(p.label)
	b.WriteString(" ")
	if p.total > 0 {
		frac := float64(p.done) / float64(p.total)
		frac = min(max(frac, 0), 1)
		fill := int(frac * barWidth)
		b.WriteString("[")
		b.WriteString(strings.Repeat("=", fill))
		if fill < barWidth {
			b.WriteString(">")
			b.WriteString(strings.Repeat(" ", barWidth-fill-1))
		}
		fmt.Fprintf(&b, "] %3d%%  %s / %s", int(frac*100), humanSize(p.done), humanSize(p.total))
	} else {
		b.WriteString(humanSize(p.done))
	}
	if secs := p.now().Sub(p.start).Seconds(); secs > 0 {
		fmt.Fprintf(&b, "  %s/s", humanSize(int64(float64(p.done)/secs)))
	}
	return b.String()
}

// isTerminal reports whether w is a character device (an interactive
// terminal), the only place a progress bar is drawn.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

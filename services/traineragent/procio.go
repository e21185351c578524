package traineragent

import (
	"bytes"
	"io"
	"math"
	"os"
	"path/filepath"
	"sync"
)

// maxLine caps one log line; longer output is split.
const maxLine = 64 << 10

// lineWriter splits a process's output into lines. exec copies stdout and
// stderr through one goroutine when both are the same writer, so Write is
// never called concurrently; close emits a last unterminated line.
type lineWriter struct {
	emit func(string)
	buf  []byte
}

func (l *lineWriter) Write(p []byte) (int, error) {
	l.buf = append(l.buf, p...)
	for {
		i := bytes.IndexByte(l.buf, '\n')
		if i < 0 {
			break
		}
		l.emit(string(l.buf[:i]))
		l.buf = l.buf[i+1:]
	}
	for len(l.buf) > maxLine {
		l.emit(string(l.buf[:maxLine]))
		l.buf = l.buf[maxLine:]
	}
	return len(p), nil
}

func (l *lineWriter) close() {
	if len(l.buf) > 0 {
		l.emit(string(l.buf))
		l.buf = nil
	}
}

// metricsTailer follows BMAAS_METRICS_FILE: each complete JSON line goes
// to NATS and into the task's status; the newest step and the last line's
// metrics are kept for the checkpoint and the version.
type metricsTailer struct {
	path string
	sk   *sink
	w    *worker

	mu      sync.Mutex
	off     int64
	partial []byte
	step    int64
	last    map[string]float64
}

func (m *metricsTailer) poll() {
	m.mu.Lock()
	defer m.mu.Unlock()
	f, err := os.Open(m.path)
	if err != nil {
		return
	}
	defer func() { _ = f.Close() }()
	if _, err := f.Seek(m.off, io.SeekStart); err != nil {
		return
	}
	b, err := io.ReadAll(io.LimitReader(f, 16<<20))
	if err != nil || len(b) == 0 {
		return
	}
	m.off += int64(len(b))
	m.partial = append(m.partial, b...)
	for {
		i := bytes.IndexByte(m.partial, '\n')
		if i < 0 {
			break
		}
		line := bytes.TrimSpace(m.partial[:i])
		m.partial = m.partial[i+1:]
		if len(line) == 0 {
			continue
		}
		ml, err := parseMetrics(line)
		if err != nil {
			m.sk.logf("metrics line ignored (%v): %.200s", err, line)
			continue
		}
		m.sk.metric(line)
		if ml.hasStep {
			m.step = max(m.step, ml.step)
		}
		last := map[string]float64{}
		for k, v := range ml.values {
			if !math.IsNaN(v) && !math.IsInf(v, 0) {
				last[k] = v
			}
		}
		m.last = last
		m.w.progress(m.step, last)
	}
}

// checkpointWatcher uploads BMAAS_CHECKPOINT_DIR as a tar.gz when its
// contents changed. A job has one checkpoint, so only rank 0 uploads (as
// data-parallel workers hold the same state); every rank restores it.
type checkpointWatcher struct {
	w    *worker
	sk   *sink
	dir  string
	step int64
	seen string // fingerprint of what was restored or last uploaded
}

func newCheckpointWatcher(w *worker, sk *sink, dir string, step int64) *checkpointWatcher {
	fp, _ := fingerprint(dir)
	return &checkpointWatcher{w: w, sk: sk, dir: dir, step: step, seen: fp}
}

// upload stores the directory if it changed, as of step (never below
// the restored or last uploaded step).
func (c *checkpointWatcher) upload(step int64) {
	if c.w.fenced.Load() || c.w.a.Rank != 0 {
		return
	}
	fp, err := fingerprint(c.dir)
	if err != nil || fp == c.seen || fp == emptyFingerprint {
		return
	}
	tmp := filepath.Join(c.w.dir, "checkpoint.tar.gz")
	if err := writeTarGz(tmp, c.dir, nil); err != nil {
		c.sk.logf("checkpoint not archived: %v", err)
		return
	}
	defer func() { _ = os.Remove(tmp) }()
	if after, _ := fingerprint(c.dir); after != fp {
		return // written to while archived; the next round takes it
	}
	f, err := os.Open(tmp)
	if err != nil {
		return
	}
	defer func() { _ = f.Close() }()
	step = max(step, c.step)
	if !c.w.uploadCheckpoint(c.sk, step, f, map[string]string{"runtime": "process", "format": "tar.gz"}) {
		return
	}
	c.seen, c.step = fp, step
}

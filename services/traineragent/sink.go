package traineragent

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/bmaas/bmaas/pkg/events"
)

// tailLines is how many of the last log lines a FAILED status carries.
const tailLines = 20

// sink takes a task's log lines and metrics: log lines go to the local
// log file and bmaas.logs.<job>.<rank>, metrics to
// bmaas.metrics.<job>.<rank>, each event with the attempt in its
// HeaderAttempt; the last lines are kept for the failure message.
type sink struct {
	bus     *events.Bus
	log     *slog.Logger
	job     string
	rank    string
	attempt string

	mu    sync.Mutex
	file  *os.File
	lines []string
	warn  bool
}

// HeaderAttempt carries the attempt of a task's log and metrics events.
const HeaderAttempt = "Bmaas-Attempt"

func newSink(bus *events.Bus, log *slog.Logger, path, job string, rank, attempt int32) (*sink, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("task log: %w", err)
	}
	return &sink{bus: bus, log: log, job: job, rank: strconv.Itoa(int(rank)), attempt: strconv.Itoa(int(attempt)), file: f}, nil
}

// line records one log line.
func (s *sink) line(l string) {
	l = strings.TrimRight(l, "\r\n")
	s.mu.Lock()
	_, _ = s.file.WriteString(l + "\n")
	if len(s.lines) == tailLines {
		copy(s.lines, s.lines[1:])
		s.lines = s.lines[:tailLines-1]
	}
	s.lines = append(s.lines, l)
	s.mu.Unlock()
	s.publish(events.KindLogs, []byte(l))
}

// logf records a line written by the agent itself.
func (s *sink) logf(format string, args ...any) { s.line("[bmaas] " + fmt.Sprintf(format, args...)) }

// metric publishes one metrics JSON line.
func (s *sink) metric(data []byte) { s.publish(events.KindMetrics, bytes.TrimSpace(data)) }

func (s *sink) publish(kind string, data []byte) {
	if s.bus == nil {
		return
	}
	err := s.bus.PublishAsync(events.Event{Kind: kind, Key: s.job, Type: s.rank, Data: data,
		Headers: map[string]string{HeaderAttempt: s.attempt}})
	if err != nil {
		s.mu.Lock()
		first := !s.warn
		s.warn = true
		s.mu.Unlock()
		if first {
			s.log.Warn("publish task output", "job", s.job, "kind", kind, "err", err)
		}
	}
}

// tail returns the last lines, newest last.
func (s *sink) tail() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Join(s.lines, "\n")
}

// flush waits a little for the published lines to be stored.
func (s *sink) flush(ctx context.Context) {
	if s.bus == nil {
		return
	}
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	if err := s.bus.Flush(fctx); err != nil {
		s.log.Debug("flush task output", "job", s.job, "err", err)
	}
}

func (s *sink) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	_ = s.file.Close()
}

// metricLine is one parsed metrics line: {"step":..,"split":..,"name":value,...}.
type metricLine struct {
	step    int64
	hasStep bool
	values  map[string]float64 // named <split>_<name>, or <name> without a split
}

// parseMetrics parses a metrics JSON line; non-numeric fields are ignored.
func parseMetrics(b []byte) (metricLine, error) {
	var raw map[string]any
	if err := json.Unmarshal(b, &raw); err != nil {
		return metricLine{}, err
	}
	ml := metricLine{values: map[string]float64{}}
	split, _ := raw["split"].(string)
	for k, v := range raw {
		f, ok := v.(float64)
		switch {
		case k == "split":
		case k == "step" && ok:
			ml.step, ml.hasStep = int64(f), true
		case ok:
			ml.values[metricName(split, k)] = f
		}
	}
	return ml, nil
}

// metricName names a metric of a split as TaskStatus and versions carry it.
func metricName(split, name string) string {
	if split == "" {
		return name
	}
	return split + "_" + name
}

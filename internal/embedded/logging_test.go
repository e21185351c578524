package embedded

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
)

// captured records what reaches an slog logger, at min and above.
type captured struct {
	min  slog.Level
	mu   sync.Mutex
	recs []slog.Record
}

func (c *captured) Enabled(_ context.Context, l slog.Level) bool { return l >= c.min }
func (c *captured) Handle(_ context.Context, r slog.Record) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.recs = append(c.recs, r)
	return nil
}
func (c *captured) WithAttrs([]slog.Attr) slog.Handler { return c }
func (c *captured) WithGroup(string) slog.Handler      { return c }

// find returns the first record whose message contains msg.
func (c *captured) find(msg string) (slog.Record, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	i := slices.IndexFunc(c.recs, func(r slog.Record) bool { return strings.Contains(r.Message, msg) })
	if i < 0 {
		return slog.Record{}, false
	}
	return c.recs[i], true
}

func attrsOf(r slog.Record) map[string]any {
	m := map[string]any{}
	r.Attrs(func(a slog.Attr) bool { m[a.Key] = a.Value.Any(); return true })
	return m
}

// TestZapLinesReachSlogAtWarn: etcd's zap lines reach the process's
// logger as records of the same level with their fields; informational
// lines only when the logger takes debug records.
func TestZapLinesReachSlogAtWarn(t *testing.T) {
	t.Parallel()
	h := &captured{min: slog.LevelInfo}
	z := zapLogger(slog.New(h)).Named("raft").With(zap.String("member", "m1"))
	z.Info("became leader")
	z.Warn("slow fdatasync", zap.Duration("took", 2*time.Second), zap.Int("n", 3))
	z.Error("disk full", zap.Error(errors.New("ENOSPC")))
	_, ok := h.find("became leader")
	require.False(t, ok, "info is not logged without debug")
	w, ok := h.find("slow fdatasync")
	require.True(t, ok)
	require.Equal(t, slog.LevelWarn, w.Level)
	a := attrsOf(w)
	require.Equal(t, "raft", a["logger"])
	require.Equal(t, 2*time.Second, a["took"])
	require.EqualValues(t, 3, a["n"])
	e, ok := h.find("disk full")
	require.True(t, ok)
	require.Equal(t, slog.LevelError, e.Level)
	require.Equal(t, "ENOSPC", attrsOf(e)["error"])

	debug := &captured{min: slog.LevelDebug}
	z = zapLogger(slog.New(debug))
	z.Debug("raft message")
	z.Info("became leader")
	_, ok = debug.find("became leader")
	require.True(t, ok, "info is logged with debug on")
	_, ok = debug.find("raft message")
	require.False(t, ok, "etcd's own debug lines never are")
	zapLogger(nil).Error("dropped") // a nil logger drops everything
}

// TestNATSLinesReachSlogAtWarn: the NATS server's warnings reach the
// logger; its notices only with debug on.
func TestNATSLinesReachSlogAtWarn(t *testing.T) {
	t.Parallel()
	h := &captured{min: slog.LevelInfo}
	n := natsServerLogger(slog.New(h))
	n.Noticef("Server is ready")
	n.Warnf("JetStream %s", "low on disk")
	n.Errorf("client %d: %s", 7, "Authorization Violation")
	_, ok := h.find("Server is ready")
	require.False(t, ok)
	w, ok := h.find("JetStream low on disk")
	require.True(t, ok)
	require.Equal(t, slog.LevelWarn, w.Level)
	e, ok := h.find("client 7: Authorization Violation")
	require.True(t, ok)
	require.Equal(t, slog.LevelError, e.Level)

	debug := &captured{min: slog.LevelDebug}
	natsServerLogger(slog.New(debug)).Noticef("Server is ready")
	_, ok = debug.find("Server is ready")
	require.True(t, ok)
}

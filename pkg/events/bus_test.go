//go:build integration

package events

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/bmaas/bmaas/internal/testenv"
)

const waitFor = 10 * time.Second

func newBus(t *testing.T) *Bus {
	t.Helper()
	b, err := NewBus(t.Context(), testenv.NATSConn(t), Config{}, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	return b
}

// subscribe runs Subscribe in the background and returns a channel of the
// events handled and a stop function that waits for Subscribe to return.
func subscribe(t *testing.T, b *Bus, durable, filter string, h func(context.Context, Event) error, opts ...SubscribeOption) (<-chan Event, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	got := make(chan Event, 100)
	done := make(chan error, 1)
	go func() {
		done <- b.SubscribeWith(ctx, StreamEvents, durable, filter, func(ctx context.Context, e Event) error {
			if h != nil {
				if err := h(ctx, e); err != nil {
					return err
				}
			}
			got <- e
			return nil
		}, opts...)
	}()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(waitFor):
			t.Fatal("Subscribe did not return after cancel")
		}
	}
	t.Cleanup(stop)
	return got, stop
}

func receive(t *testing.T, ch <-chan Event) Event {
	t.Helper()
	select {
	case e := <-ch:
		return e
	case <-time.After(waitFor):
		t.Fatal("no event received")
		return Event{}
	}
}

func streamMsgs(t *testing.T, b *Bus, stream string) uint64 {
	t.Helper()
	s, err := b.JetStream().Stream(t.Context(), stream)
	require.NoError(t, err)
	info, err := s.Info(t.Context())
	require.NoError(t, err)
	return info.State.Msgs
}

func TestPublishSubscribeRoundTrip(t *testing.T) {
	t.Parallel()
	b := newBus(t)
	got, _ := subscribe(t, b, "roundtrip", "bmaas.model.>", nil)
	when := time.Date(2025, 1, 2, 3, 4, 5, 6, time.UTC)
	sent := Event{
		ID: NewID(), Kind: KindModel, Key: "iris", Type: "version.ready", Time: when,
		Data: []byte(`{"version":3}`), Headers: map[string]string{"Bmaas-Trace": "abc"},
	}
	require.NoError(t, b.Publish(t.Context(), sent))
	// Another kind is not delivered to this filter.
	require.NoError(t, b.Publish(t.Context(), Event{Kind: KindJob, Key: "j1", Type: "running"}))

	e := receive(t, got)
	require.Equal(t, sent.ID, e.ID)
	require.Equal(t, sent.Kind, e.Kind)
	require.Equal(t, sent.Key, e.Key)
	require.Equal(t, sent.Type, e.Type)
	require.True(t, when.Equal(e.Time), "time %s", e.Time)
	require.Equal(t, sent.Data, e.Data)
	require.Equal(t, sent.Headers, e.Headers)
	require.NotZero(t, e.Seq)
	require.Equal(t, "bmaas.model.iris.version.ready", e.Subject())
	require.Equal(t, uint64(2), streamMsgs(t, b, StreamEvents))
	select {
	case e := <-got:
		t.Fatalf("unexpected event %s", e.Subject())
	default:
	}
}

func TestNewBusIdempotent(t *testing.T) {
	t.Parallel()
	nc := testenv.NATSConn(t)
	for _, cfg := range []Config{{}, {}, {MaxAge: time.Hour, DuplicateWindow: time.Minute}} {
		_, err := NewBus(t.Context(), nc, cfg, nil)
		require.NoError(t, err)
	}
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	s, err := js.Stream(t.Context(), StreamEvents)
	require.NoError(t, err)
	require.Equal(t, time.Hour, s.CachedInfo().Config.MaxAge)
	require.Equal(t, time.Minute, s.CachedInfo().Config.Duplicates)
	for _, name := range []string{StreamMetrics, StreamLogs} {
		s, err := js.Stream(t.Context(), name)
		require.NoError(t, err)
		require.Equal(t, 72*time.Hour, s.CachedInfo().Config.MaxAge)
	}
}

func TestPublishInvalid(t *testing.T) {
	t.Parallel()
	b := newBus(t)
	err := b.Publish(t.Context(), Event{Kind: KindModel, Key: "a.b", Type: "created"})
	require.ErrorIs(t, err, ErrInvalidEvent)
	require.ErrorIs(t, b.PublishAsync(Event{Kind: "nope", Key: "a", Type: "x"}), ErrInvalidEvent)
	err = b.Subscribe(t.Context(), "OTHER", "d", "", func(context.Context, Event) error { return nil })
	require.ErrorIs(t, err, ErrUnknownStream)
}

func TestDurableResume(t *testing.T) {
	t.Parallel()
	b := newBus(t)
	ctx := t.Context()
	publish := func(n int) string {
		e := Event{ID: NewID(), Kind: KindJob, Key: "j1", Type: fmt.Sprint("step", n)}
		require.NoError(t, b.Publish(ctx, e))
		return e.ID
	}
	first := []string{publish(1), publish(2)}
	got, stop := subscribe(t, b, "resume", "bmaas.job.>", nil)
	for _, id := range first {
		require.Equal(t, id, receive(t, got).ID)
	}
	stop()

	third := publish(3)
	got, _ = subscribe(t, b, "resume", "bmaas.job.>", nil)
	require.Equal(t, third, receive(t, got).ID)
	fourth := publish(4)
	require.Equal(t, fourth, receive(t, got).ID)

	s, err := b.JetStream().Stream(ctx, StreamEvents)
	require.NoError(t, err)
	c, err := s.Consumer(ctx, "resume")
	require.NoError(t, err)
	info, err := c.Info(ctx)
	require.NoError(t, err)
	require.Zero(t, info.NumAckPending)
	require.Zero(t, info.NumRedelivered)
	require.Zero(t, info.NumPending)
}

func TestDuplicateIDDropped(t *testing.T) {
	t.Parallel()
	b := newBus(t)
	e := Event{ID: NewID(), Kind: KindDeployment, Key: "d1", Type: "scaled", Data: []byte("1")}
	require.NoError(t, b.Publish(t.Context(), e))
	e.Data = []byte("2")
	require.NoError(t, b.Publish(t.Context(), e))
	require.NoError(t, b.PublishAsync(e))
	require.NoError(t, b.Flush(t.Context()))
	require.Equal(t, uint64(1), streamMsgs(t, b, StreamEvents))

	var seen []Event
	require.NoError(t, b.Replay(t.Context(), StreamEvents, "", false, func(e Event) error {
		seen = append(seen, e)
		return nil
	}))
	require.Len(t, seen, 1)
	require.Equal(t, []byte("1"), seen[0].Data)
}

func TestHandlerErrorRedelivers(t *testing.T) {
	t.Parallel()
	b := newBus(t)
	var attempts atomic.Int32
	got, _ := subscribe(t, b, "retry", "", func(context.Context, Event) error {
		if attempts.Add(1) < 3 {
			return errors.New("transient")
		}
		return nil
	}, WithRetryBackoff(10*time.Millisecond, 50*time.Millisecond))
	sent := Event{ID: NewID(), Kind: KindEvaluation, Key: "e1", Type: "finished"}
	require.NoError(t, b.Publish(t.Context(), sent))
	require.Equal(t, sent.ID, receive(t, got).ID)
	require.Equal(t, int32(3), attempts.Load())
}

func TestMaxDeliverDrops(t *testing.T) {
	t.Parallel()
	b := newBus(t)
	var attempts atomic.Int32
	got, _ := subscribe(t, b, "poison", "", func(_ context.Context, e Event) error {
		if e.Key == "poison" {
			attempts.Add(1)
			return errors.New("permanent")
		}
		return nil
	}, WithRetryBackoff(5*time.Millisecond, 5*time.Millisecond), WithMaxDeliver(2))
	require.NoError(t, b.Publish(t.Context(), Event{Kind: KindJob, Key: "poison", Type: "x"}))
	require.NoError(t, b.Publish(t.Context(), Event{Kind: KindJob, Key: "fine", Type: "x"}))
	require.Equal(t, "fine", receive(t, got).Key)
	require.Eventually(t, func() bool { return attempts.Load() == 2 }, waitFor, 5*time.Millisecond)
}

func TestReplay(t *testing.T) {
	t.Parallel()
	b := newBus(t)
	ctx := t.Context()
	logLine := func(job string, n int) Event {
		return Event{Kind: KindLogs, Key: job, Type: "0", Data: []byte(fmt.Sprint("line ", n))}
	}
	for i := range 3 {
		require.NoError(t, b.PublishAsync(logLine("a", i)))
	}
	require.NoError(t, b.PublishAsync(logLine("b", 0)))
	require.NoError(t, b.Flush(ctx))

	// Without follow: the stored lines, then return.
	var lines []string
	var lastSeq uint64
	require.NoError(t, b.Replay(ctx, StreamLogs, "bmaas.logs.a.>", false, func(e Event) error {
		lines = append(lines, string(e.Data))
		lastSeq = e.Seq
		return nil
	}))
	require.Equal(t, []string{"line 0", "line 1", "line 2"}, lines)

	// Nothing matches: return at once.
	require.NoError(t, b.Replay(ctx, StreamLogs, "bmaas.logs.none.>", false, func(Event) error {
		return errors.New("unexpected event")
	}))

	// io.EOF stops early without error.
	n := 0
	require.NoError(t, b.Replay(ctx, StreamLogs, "", false, func(Event) error { n++; return io.EOF }))
	require.Equal(t, 1, n)

	// Resume after a sequence.
	lines = nil
	require.NoError(t, b.ReplayFrom(ctx, StreamLogs, "bmaas.logs.a.>", lastSeq, false, func(e Event) error {
		lines = append(lines, string(e.Data))
		return nil
	}))
	require.Equal(t, []string{"line 2"}, lines)

	// With follow: stored lines, then new ones until ctx is done.
	followCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	got := make(chan string, 10)
	done := make(chan error, 1)
	go func() {
		done <- b.Replay(followCtx, StreamLogs, "bmaas.logs.a.>", true, func(e Event) error {
			got <- string(e.Data)
			return nil
		})
	}()
	next := func() string {
		select {
		case s := <-got:
			return s
		case <-time.After(waitFor):
			t.Fatal("no log line")
			return ""
		}
	}
	for i := range 3 {
		require.Equal(t, fmt.Sprint("line ", i), next())
	}
	require.NoError(t, b.Publish(ctx, logLine("a", 3)))
	require.Equal(t, "line 3", next())
	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(waitFor):
		t.Fatal("Replay did not return after cancel")
	}
}

func TestPublishAsyncFlush(t *testing.T) {
	t.Parallel()
	b := newBus(t)
	const n = 500
	for i := range n {
		require.NoError(t, b.PublishAsync(Event{Kind: KindMetrics, Key: "job1", Type: fmt.Sprint(i % 4), Data: []byte(`{"step":1}`)}))
	}
	require.NoError(t, b.Flush(t.Context()))
	require.Equal(t, uint64(n), streamMsgs(t, b, StreamMetrics))
}

func BenchmarkPublishAsync(b *testing.B) {
	bus, err := NewBus(b.Context(), testenv.NATSConn(b), Config{}, nil)
	require.NoError(b, err)
	data := []byte(`{"step":100,"split":"train","loss":0.1234}`)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if err := bus.PublishAsync(Event{Kind: KindMetrics, Key: "job1", Type: "0", Data: data}); err != nil {
			b.Fatal(err)
		}
	}
	require.NoError(b, bus.Flush(b.Context()))
}

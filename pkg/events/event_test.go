package events

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestSubject(t *testing.T) {
	t.Parallel()
	e := Event{Kind: KindModel, Key: "iris", Type: "version.ready"}
	require.Equal(t, "bmaas.model.iris.version.ready", e.Subject())
	require.NoError(t, e.Validate())
}

func TestValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		e    Event
		ok   bool
	}{
		{"model", Event{Kind: KindModel, Key: "iris", Type: "created"}, true},
		{"job ulid", Event{Kind: KindJob, Key: NewID(), Type: "succeeded"}, true},
		{"metrics", Event{Kind: KindMetrics, Key: "job1", Type: "0"}, true},
		{"logs", Event{Kind: KindLogs, Key: "job1", Type: "3"}, true},
		{"dotted type", Event{Kind: KindModel, Key: "iris", Type: "version.ready"}, true},
		{"unknown kind", Event{Kind: "widget", Key: "x", Type: "created"}, false},
		{"empty kind", Event{Key: "x", Type: "created"}, false},
		{"dot in key", Event{Kind: KindModel, Key: "iris.v2", Type: "created"}, false},
		{"empty key", Event{Kind: KindModel, Type: "created"}, false},
		{"wildcard key", Event{Kind: KindModel, Key: "*", Type: "created"}, false},
		{"gt in key", Event{Kind: KindModel, Key: "a>", Type: "created"}, false},
		{"space in key", Event{Kind: KindModel, Key: "a b", Type: "created"}, false},
		{"empty type", Event{Kind: KindModel, Key: "iris"}, false},
		{"empty type token", Event{Kind: KindModel, Key: "iris", Type: "version..ready"}, false},
		{"trailing dot", Event{Kind: KindModel, Key: "iris", Type: "created."}, false},
		{"wildcard type", Event{Kind: KindModel, Key: "iris", Type: ">"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.e.Validate()
			if tt.ok {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, ErrInvalidEvent)
		})
	}
}

func TestNewIDSortable(t *testing.T) {
	t.Parallel()
	prev := NewID()
	for range 1000 {
		id := NewID()
		require.Len(t, id, 26)
		require.Greater(t, id, prev)
		prev = id
	}
}

func TestBackoff(t *testing.T) {
	t.Parallel()
	tests := []struct {
		delivered uint64
		want      time.Duration
	}{
		{0, 100 * time.Millisecond},
		{1, 100 * time.Millisecond},
		{2, 200 * time.Millisecond},
		{4, 800 * time.Millisecond},
		{10, time.Second},
		{1 << 40, time.Second},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, backoff(tt.delivered, 100*time.Millisecond, time.Second), "delivered %d", tt.delivered)
	}
}

func TestDeduper(t *testing.T) {
	t.Parallel()
	d := NewDeduper(3)
	require.False(t, d.Seen("a"))
	require.True(t, d.Seen("a"))
	require.False(t, d.Seen("b"))
	require.False(t, d.Seen("c"))
	require.True(t, d.Seen("a")) // refreshes a; b is now the oldest
	require.False(t, d.Seen("d"))
	require.Equal(t, 3, d.Len())
	require.False(t, d.Seen("b"), "b was evicted")
	d.Forget("d")
	require.False(t, d.Seen("d"))
}

func TestDeduperWrap(t *testing.T) {
	t.Parallel()
	d := NewDeduper(10)
	calls := map[string]int{}
	fail := true
	h := d.Wrap(func(_ context.Context, e Event) error {
		calls[e.ID]++
		if e.ID == "flaky" && fail {
			fail = false
			return errors.New("transient")
		}
		return nil
	})
	ctx := t.Context()
	for i := range 3 {
		require.NoError(t, h(ctx, Event{ID: "once"}), "call %d", i)
	}
	require.Error(t, h(ctx, Event{ID: "flaky"}))
	require.NoError(t, h(ctx, Event{ID: "flaky"}))
	require.NoError(t, h(ctx, Event{ID: "flaky"}))
	require.Equal(t, map[string]int{"once": 1, "flaky": 2}, calls)
}

func BenchmarkDeduper(b *testing.B) {
	d := NewDeduper(1 << 14)
	ids := make([]string, 1<<16)
	for i := range ids {
		ids[i] = fmt.Sprint(i)
	}
	i := 0
	for b.Loop() {
		d.Seen(ids[i&(len(ids)-1)])
		i++
	}
}

// Every kind the events stream carries can be published: one list says
// which, so a new kind cannot be in the stream's subjects and refused.
func TestEveryEventKindHasTheEventsStream(t *testing.T) {
	for _, k := range EventKinds() {
		s, err := streamForKind(k)
		if err != nil || s != StreamEvents {
			t.Fatalf("kind %s: stream %q, %v", k, s, err)
		}
	}
	if _, err := streamForKind("nope"); err == nil {
		t.Fatal("an unknown kind has a stream")
	}
}

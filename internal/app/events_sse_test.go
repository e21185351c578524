//go:build integration

package app

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	iamv1 "github.com/bmaas/bmaas/api/bmaas/iam/v1"
	"github.com/bmaas/bmaas/internal/testenv"
	"github.com/bmaas/bmaas/pkg/events"
	"github.com/bmaas/bmaas/pkg/iam"
)

// sseStream is an open events stream read event by event.
type sseStream struct {
	t    *testing.T
	resp *http.Response
	rd   *bufio.Reader
}

// openWatch opens GET url with the headers and returns the answer; a
// 200 is read as a stream, after its ready event.
func openWatch(t *testing.T, ctx context.Context, url string, headers map[string]string) (*sseStream, *http.Response) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	require.NoError(t, err)
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	if resp.StatusCode != http.StatusOK {
		return nil, resp
	}
	t.Cleanup(func() { _ = resp.Body.Close() })
	require.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))
	s := &sseStream{t: t, resp: resp, rd: bufio.NewReader(resp.Body)}
	name, _, _ := s.next()
	require.Equal(t, "ready", name)
	return s, resp
}

// next reads one event (its name, data and id), or a comment block as
// the name ":".
func (s *sseStream) next() (name, data, id string) {
	s.t.Helper()
	for {
		line, err := s.rd.ReadString('\n')
		require.NoError(s.t, err)
		line = strings.TrimSuffix(line, "\n")
		switch {
		case line == "":
			if name != "" || data != "" {
				return name, data, id
			}
		case strings.HasPrefix(line, ":"):
			name = ":"
		case strings.HasPrefix(line, "event: "):
			name = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			data = strings.TrimPrefix(line, "data: ")
		case strings.HasPrefix(line, "id: "):
			id = strings.TrimPrefix(line, "id: ")
		}
	}
}

// event reads the next data event, skipping keep-alive comments.
func (s *sseStream) event() watchEvent {
	s.t.Helper()
	for {
		name, data, _ := s.next()
		if name == ":" {
			continue
		}
		require.Empty(s.t, name, data)
		var e watchEvent
		require.NoError(s.t, json.Unmarshal([]byte(data), &e), data)
		return e
	}
}

func watchBus(t *testing.T) *events.Bus {
	t.Helper()
	bus, err := events.NewBus(t.Context(), testenv.NATSConn(t), events.Config{}, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	return bus
}

func publish(t *testing.T, bus *events.Bus, kind, key, typ string, at time.Time) {
	t.Helper()
	require.NoError(t, bus.Publish(t.Context(), events.Event{Kind: kind, Key: key, Type: typ, Time: at}))
}

// The stream relays the events published after it opened, as
// {kind,key,type,time}, filtered by kinds; what came before is not sent.
func TestEventsWatchRelaysNewEvents(t *testing.T) {
	t.Parallel()
	bus := watchBus(t)
	h := newEventsWatch(bus)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	key := "w" + strings.ToLower(events.NewID())

	publish(t, bus, events.KindDeployment, key, "before", time.Time{})
	all, _ := openWatch(t, t.Context(), srv.URL, nil)
	only, _ := openWatch(t, t.Context(), srv.URL+"?kinds=job,alert", nil)
	at := time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC)
	publish(t, bus, events.KindDeployment, key, "status.changed", at)
	publish(t, bus, events.KindJob, key, "created", at)

	// Other tests share the server's stream: skip their events.
	mine := func(s *sseStream) watchEvent {
		for {
			if e := s.event(); e.Key == key {
				return e
			}
		}
	}
	require.Equal(t, watchEvent{Kind: "deployment", Key: key, Type: "status.changed", Time: "2026-01-02T03:04:05.000006Z"}, mine(all))
	require.Equal(t, watchEvent{Kind: "job", Key: key, Type: "created", Time: "2026-01-02T03:04:05.000006Z"}, mine(all))
	require.Equal(t, watchEvent{Kind: "job", Key: key, Type: "created", Time: "2026-01-02T03:04:05.000006Z"}, mine(only),
		"the kinds filter passes jobs only")
}

// An idle stream sends keep-alive comments; the stream ends when its
// client goes (its slot is given back) and when the edge shuts down.
func TestEventsWatchKeepsAliveAndEnds(t *testing.T) {
	t.Parallel()
	h := newEventsWatch(watchBus(t))
	h.keepAlive = 50 * time.Millisecond
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)

	ctx, cancel := context.WithCancel(t.Context())
	s, _ := openWatch(t, ctx, srv.URL, nil)
	name, _, _ := s.next()
	require.Equal(t, ":", name, "a keep-alive comment")
	require.EqualValues(t, 1, h.open.Load())
	cancel()
	require.Eventually(t, func() bool { return h.open.Load() == 0 }, 10*time.Second, 20*time.Millisecond,
		"the handler returns once its client went")

	s, _ = openWatch(t, t.Context(), srv.URL, nil)
	h.close()
	done := make(chan error, 1)
	go func() { _, err := io.Copy(io.Discard, s.rd); done <- err }()
	select {
	case err := <-done:
		require.NoError(t, err, "the stream ends cleanly on shutdown")
	case <-time.After(10 * time.Second):
		t.Fatal("the stream did not end on shutdown")
	}
	_, resp := openWatch(t, t.Context(), srv.URL, nil)
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	_ = resp.Body.Close()
}

// Bad kinds name the parameter; a page of another origin, the stream
// limit and a process without a bus are refused.
func TestEventsWatchRefuses(t *testing.T) {
	t.Parallel()
	h := newEventsWatch(watchBus(t))
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	for _, tc := range []struct {
		query   string
		headers map[string]string
		code    int
		msg     string
	}{
		{"?kinds=job,jobs", nil, http.StatusBadRequest, `kinds: unknown kind \"jobs\"`},
		{"", map[string]string{"Sec-Fetch-Site": "cross-site"}, http.StatusForbidden, "Sec-Fetch-Site: cross-site"},
		{"", map[string]string{"Origin": "https://evil.example"}, http.StatusForbidden, "Origin: https://evil.example"},
	} {
		_, resp := openWatch(t, t.Context(), srv.URL+tc.query, tc.headers)
		body, err := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		require.NoError(t, err)
		require.Equal(t, tc.code, resp.StatusCode, tc.query)
		require.Contains(t, string(body), tc.msg)
	}
	// The same origin, as the console's fetch sends it, passes.
	u := strings.TrimPrefix(srv.URL, "http://")
	s, _ := openWatch(t, t.Context(), srv.URL, map[string]string{"Sec-Fetch-Site": "same-origin", "Origin": "http://" + u})
	require.NotNil(t, s)

	h.max = 1
	_, resp := openWatch(t, t.Context(), srv.URL, nil)
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, "over the limit")
	_ = resp.Body.Close()

	none := httptest.NewServer(newEventsWatch(nil))
	t.Cleanup(none.Close)
	_, resp = openWatch(t, t.Context(), none.URL, nil)
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	_ = resp.Body.Close()
}

// On the edge the stream needs the bearer token like the rest of /v1.
func TestEventsWatchOnTheEdge(t *testing.T) {
	t.Parallel()
	bus := watchBus(t)
	base := failingEdge(t, prometheus.NewRegistry(), func(e *edge) { e.bus = bus })
	_, resp := openWatch(t, t.Context(), base+"/v1/events:watch", nil)
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	_ = resp.Body.Close()
	s, _ := openWatch(t, t.Context(), base+"/v1/events:watch?kinds=model", map[string]string{"Authorization": "Bearer " + fuzzToken})
	key := "e" + strings.ToLower(events.NewID())
	publish(t, bus, events.KindModel, key, "created", time.Time{})
	for {
		if e := s.event(); e.Key == key {
			require.Equal(t, "model", e.Kind)
			return
		}
	}
}

// A caller sees the events of the projects it has a role in (an event
// without a project is the default project's), and the nodes'.
func TestEventsWatchShowsACallerItsProjectsOnly(t *testing.T) {
	t.Parallel()
	bus := watchBus(t)
	h := newEventsWatch(bus)
	carol, err := iam.NewPrincipal(&iamv1.Token{Identity: "carol", Bindings: []*iamv1.Binding{{Project: "vision", Role: "viewer"}}})
	require.NoError(t, err)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r.WithContext(iam.WithCaller(r.Context(), &iam.Caller{Principal: carol})))
	}))
	t.Cleanup(srv.Close)
	key := "p" + strings.ToLower(events.NewID())
	s, _ := openWatch(t, t.Context(), srv.URL, nil)
	for _, e := range []events.Event{
		{Kind: events.KindJob, Key: key, Type: "default-project", Headers: map[string]string{events.HeaderProject: "default"}},
		{Kind: events.KindModel, Key: key, Type: "no-project"},
		{Kind: events.KindJob, Key: key, Type: "other-project", Headers: map[string]string{events.HeaderProject: "nlp"}},
		{Kind: events.KindJob, Key: key, Type: "vision-project", Headers: map[string]string{events.HeaderProject: "vision"}},
		{Kind: events.KindNode, Key: key, Type: "node"},
	} {
		require.NoError(t, bus.Publish(t.Context(), e))
	}
	var seen []string
	for len(seen) < 2 {
		if e := s.event(); e.Key == key {
			seen = append(seen, e.Type)
		}
	}
	require.Equal(t, []string{"vision-project", "node"}, seen)
}

package app

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/bmaas/bmaas/pkg/events"
	"github.com/bmaas/bmaas/pkg/iam"
)

// routeEventsWatch is the server-sent events route of the control-plane
// events: the console refreshes the views whose kind changed instead of
// re-reading every collection on a timer.
const routeEventsWatch = "GET /v1/events:watch"

// Bounds of the events stream.
const (
	// watchKeepAlive is how often an idle stream sends a comment, so that
	// proxies and the browser keep the connection and a gone client is
	// noticed.
	watchKeepAlive = 15 * time.Second
	// watchMaxStreams bounds the streams open at once on this edge (each
	// holds an ordered JetStream consumer).
	watchMaxStreams = 512
	// watchInactive is how long the server keeps the consumer of a stream
	// whose edge vanished without removing it.
	watchInactive = 30 * time.Second
	// watchRetryMillis is the reconnection delay an EventSource uses.
	watchRetryMillis = 3000
)

// watchEvent is one relayed event: what changed, not its payload (the
// client reads the object through the REST API, which checks access).
type watchEvent struct {
	Kind    string `json:"kind"`
	Key     string `json:"key"`
	Type    string `json:"type"`
	Time    string `json:"time"`
	Project string `json:"project,omitempty"`
}

// eventsWatch relays the events of BMAAS_EVENTS published from the moment
// a client connects (an ordered consumer with DeliverNew, headers only)
// as text/event-stream: a `ready` event once the consumer is in place,
// then one `data: {kind,key,type,time}` event each, and a comment every
// keepAlive while idle. A stream ends when its client goes or the edge shuts down. The
// route sits behind the edge's bearer token like the rest of /v1 (the
// console reads it with fetch, which sends the token), and answers only
// same-origin requests.
type eventsWatch struct {
	bus       *events.Bus
	keepAlive time.Duration
	max       int64
	open      atomic.Int64
	// done ends every stream (the edge's shutdown).
	done     chan struct{}
	stopOnce sync.Once
}

// registerEventsWatch mounts the events stream on mux and returns what
// ends its open streams, for the server's shutdown.
func registerEventsWatch(mux *http.ServeMux, bus *events.Bus) func() {
	w := newEventsWatch(bus)
	mux.Handle(routeEventsWatch, w)
	return w.close
}

func newEventsWatch(bus *events.Bus) *eventsWatch {
	return &eventsWatch{bus: bus, keepAlive: watchKeepAlive, max: watchMaxStreams, done: make(chan struct{})}
}

// close ends the open streams; later requests are refused.
func (h *eventsWatch) close() { h.stopOnce.Do(func() { close(h.done) }) }

func (h *eventsWatch) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if err := sameOrigin(r); err != nil {
		writeHTTPError(w, r, http.StatusForbidden, status.New(codes.PermissionDenied, err.Error()))
		return
	}
	subjects, err := watchSubjects(r.URL.Query()["kinds"])
	if err != nil {
		writeHTTPError(w, r, http.StatusBadRequest, status.New(codes.InvalidArgument, err.Error()))
		return
	}
	select {
	case <-h.done:
		writeHTTPError(w, r, http.StatusServiceUnavailable, status.New(codes.Unavailable, "the server is shutting down"))
		return
	default:
	}
	if h.bus == nil {
		writeHTTPError(w, r, http.StatusServiceUnavailable, status.New(codes.Unavailable, "this process has no event bus"))
		return
	}
	if h.open.Add(1) > h.max {
		h.open.Add(-1)
		writeHTTPError(w, r, http.StatusServiceUnavailable, status.New(codes.ResourceExhausted,
			fmt.Sprintf("%d event streams are open on this server, its most; retry later", h.max)))
		return
	}
	defer h.open.Add(-1)

	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	got := make(chan watchEvent, 64)
	// A caller sees the events of the projects it has a role in.
	caller := iam.FromContext(r.Context())
	stop, err := h.consume(ctx, subjects, got, func(e watchEvent) bool {
		if e.Kind == events.KindNode {
			return true // the cluster's own: every identity sees them
		}
		project := e.Project
		if project == "" {
			project = iam.DefaultProject
		}
		return caller.RoleIn(project) > 0
	})
	if err != nil {
		writeHTTPError(w, r, http.StatusServiceUnavailable, status.New(codes.Unavailable, "events: "+err.Error()))
		return
	}
	defer stop()

	hd := w.Header()
	hd.Set("Content-Type", "text/event-stream")
	hd.Set("Cache-Control", "no-cache")
	hd.Set("X-Accel-Buffering", "no") // no proxy buffering of the stream
	rc := http.NewResponseController(w)
	// The first event tells the client that everything published from now
	// on reaches it.
	if _, err := fmt.Fprintf(w, "retry: %d\nevent: ready\ndata: {}\n\n", watchRetryMillis); err != nil {
		return
	}
	if rc.Flush() != nil {
		return
	}
	tick := time.NewTicker(h.keepAlive)
	defer tick.Stop()
	for {
		var err error
		select {
		case <-ctx.Done():
			return
		case <-h.done:
			return
		case <-tick.C:
			_, err = fmt.Fprint(w, ": keep-alive\n\n")
		case e := <-got:
			err = writeWatchEvent(w, e)
		}
		if err == nil {
			err = rc.Flush()
		}
		if err != nil {
			return // the client went
		}
	}
}

// consume starts an ordered consumer of the subjects from now on and
// hands each event to got until ctx ends; stop ends the consumer.
func (h *eventsWatch) consume(ctx context.Context, subjects []string, got chan<- watchEvent, visible func(watchEvent) bool) (stop func(), err error) {
	cons, err := h.bus.JetStream().OrderedConsumer(ctx, events.StreamEvents, jetstream.OrderedConsumerConfig{
		FilterSubjects: subjects, DeliverPolicy: jetstream.DeliverNewPolicy, HeadersOnly: true,
		InactiveThreshold: watchInactive,
	})
	if err != nil {
		return nil, err
	}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		e, ok := toWatchEvent(m)
		if !ok || !visible(e) {
			return
		}
		select {
		case got <- e:
		case <-ctx.Done():
		}
	})
	if err != nil {
		return nil, err
	}
	return cc.Stop, nil
}

// toWatchEvent reads a message's kind, key and type from its subject
// (bmaas.<kind>.<key>.<type>) and its time from its header, else from
// when the stream stored it.
func toWatchEvent(m jetstream.Msg) (watchEvent, bool) {
	rest, ok := strings.CutPrefix(m.Subject(), events.SubjectPrefix+".")
	parts := strings.SplitN(rest, ".", 3)
	if !ok || len(parts) != 3 {
		return watchEvent{}, false
	}
	e := watchEvent{Kind: parts[0], Key: parts[1], Type: parts[2], Project: m.Headers().Get(events.HeaderProject)}
	if t, err := time.Parse(time.RFC3339Nano, m.Headers().Get(events.HeaderTime)); err == nil {
		e.Time = t.UTC().Format(time.RFC3339Nano)
	} else if md, err := m.Metadata(); err == nil {
		e.Time = md.Timestamp.UTC().Format(time.RFC3339Nano)
	}
	return e, true
}

func writeWatchEvent(w http.ResponseWriter, e watchEvent) error {
	b, err := json.Marshal(e)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "data: %s\n\n", b)
	return err
}

// watchSubjects turns the kinds query parameter (repeated or comma
// separated; empty: every kind of BMAAS_EVENTS) into subject filters.
func watchSubjects(params []string) ([]string, error) {
	all := events.EventKinds()
	var kinds []string
	for _, p := range params {
		for k := range strings.SplitSeq(p, ",") {
			k = strings.TrimSpace(k)
			if k == "" {
				continue
			}
			if !slices.Contains(all, k) {
				return nil, fmt.Errorf("kinds: unknown kind %s; one of %s", strconv.Quote(k), strings.Join(all, ", "))
			}
			if !slices.Contains(kinds, k) {
				kinds = append(kinds, k)
			}
		}
	}
	if len(kinds) == 0 {
		kinds = all
	}
	subjects := make([]string, len(kinds))
	for i, k := range kinds {
		subjects[i] = events.SubjectPrefix + "." + k + ".>"
	}
	return subjects, nil
}

// sameOrigin refuses a request a page of another origin made: by the
// browser's Sec-Fetch-Site, else by an Origin header naming another host.
// Requests from outside a browser (curl) carry neither and pass.
func sameOrigin(r *http.Request) error {
	switch site := r.Header.Get("Sec-Fetch-Site"); site {
	case "", "same-origin", "none":
	default:
		return fmt.Errorf("Sec-Fetch-Site: %s: the events stream answers pages of this server's origin only", site)
	}
	if o := r.Header.Get("Origin"); o != "" {
		u, err := url.Parse(o)
		if err != nil || !strings.EqualFold(u.Host, r.Host) {
			return fmt.Errorf("Origin: %s: the events stream answers pages of this server's origin only", o)
		}
	}
	return nil
}

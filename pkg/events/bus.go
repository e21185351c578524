package events

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Stream names.
const (
	StreamEvents  = "BMAAS_EVENTS"
	StreamMetrics = "BMAAS_METRICS"
	StreamLogs    = "BMAAS_LOGS"
)

// Config sizes the streams. Zero fields take the defaults.
type Config struct {
	// Replicas of each stream; 1 by default. Use 3 on a NATS cluster.
	Replicas int
	// MaxAge of BMAAS_EVENTS messages; 7 days by default.
	MaxAge time.Duration
	// TelemetryMaxAge of BMAAS_METRICS and BMAAS_LOGS messages; 3 days by default.
	TelemetryMaxAge time.Duration
	// DuplicateWindow within which a re-published event ID is dropped; 2 minutes by default.
	DuplicateWindow time.Duration
}

func (c Config) withDefaults() Config {
	if c.Replicas <= 0 {
		c.Replicas = 1
	}
	if c.MaxAge <= 0 {
		c.MaxAge = 7 * 24 * time.Hour
	}
	if c.TelemetryMaxAge <= 0 {
		c.TelemetryMaxAge = 3 * 24 * time.Hour
	}
	if c.DuplicateWindow <= 0 {
		c.DuplicateWindow = 2 * time.Minute
	}
	return c
}

// streamConfigs returns the configuration of the three streams.
func (c Config) streamConfigs() []jetstream.StreamConfig {
	var eventSubjects []string
	for _, k := range EventKinds() {
		eventSubjects = append(eventSubjects, SubjectPrefix+"."+k+".>")
	}
	mk := func(name, desc string, subjects []string, maxAge time.Duration) jetstream.StreamConfig {
		return jetstream.StreamConfig{
			Name:        name,
			Description: desc,
			Subjects:    subjects,
			Retention:   jetstream.LimitsPolicy,
			Storage:     jetstream.FileStorage,
			Discard:     jetstream.DiscardOld,
			MaxAge:      maxAge,
			Replicas:    c.Replicas,
			Duplicates:  min(c.DuplicateWindow, maxAge),
		}
	}
	return []jetstream.StreamConfig{
		mk(StreamEvents, "bmaas control-plane events", eventSubjects, c.MaxAge),
		mk(StreamMetrics, "bmaas training metrics", []string{SubjectPrefix + "." + KindMetrics + ".>"}, c.TelemetryMaxAge),
		mk(StreamLogs, "bmaas task logs", []string{SubjectPrefix + "." + KindLogs + ".>"}, c.TelemetryMaxAge),
	}
}

// Bus publishes and consumes events on JetStream. It is safe for concurrent use.
type Bus struct {
	js     jetstream.JetStream
	logger *slog.Logger

	mu        sync.Mutex
	asyncErrs int   // failed async publishes since the last Flush
	asyncErr  error // the first of them
}

// NewBus connects to JetStream on nc and creates or updates the streams.
func NewBus(ctx context.Context, nc *nats.Conn, cfg Config, logger *slog.Logger) (*Bus, error) {
	if nc == nil {
		return nil, errors.New("nats connection is required")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	b := &Bus{logger: logger}
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncErrHandler(b.asyncFailed))
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	b.js = js
	for _, sc := range cfg.withDefaults().streamConfigs() {
		if _, err := js.CreateOrUpdateStream(ctx, sc); err != nil {
			return nil, fmt.Errorf("create stream %s: %w", sc.Name, err)
		}
	}
	return b, nil
}

// JetStream exposes the underlying JetStream context for uses the Bus does
// not cover.
func (b *Bus) JetStream() jetstream.JetStream { return b.js }

// prepare validates e and fills its ID and Time.
func prepare(e Event) (Event, error) {
	if err := e.Validate(); err != nil {
		return e, err
	}
	if e.ID == "" {
		e.ID = NewID()
	}
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	return e, nil
}

// Publish publishes e and waits for JetStream to store it. A duplicate of an
// event ID seen within the duplicate window is dropped and reported as
// success.
func (b *Bus) Publish(ctx context.Context, e Event) error {
	e, err := prepare(e)
	if err != nil {
		return err
	}
	ack, err := b.js.PublishMsg(ctx, toMsg(e))
	if err != nil {
		return fmt.Errorf("publish %s: %w", e.Subject(), err)
	}
	if ack.Duplicate {
		b.logger.Debug("duplicate event dropped", "subject", e.Subject(), "id", e.ID)
	}
	return nil
}

// PublishAsync publishes e without waiting for the ack; use it on hot paths
// (metrics, logs) and call Flush to wait for the outstanding acks. It blocks
// briefly when too many publishes are outstanding, and fails if that lasts.
func (b *Bus) PublishAsync(e Event) error {
	e, err := prepare(e)
	if err != nil {
		return err
	}
	if _, err := b.js.PublishMsgAsync(toMsg(e)); err != nil {
		return fmt.Errorf("publish %s: %w", e.Subject(), err)
	}
	return nil
}

// Flush waits until every async publish is acked or failed, and reports the
// failures since the previous Flush.
func (b *Bus) Flush(ctx context.Context) error {
	select {
	case <-b.js.PublishAsyncComplete():
	case <-ctx.Done():
		return fmt.Errorf("flush %d pending events: %w", b.js.PublishAsyncPending(), ctx.Err())
	}
	b.mu.Lock()
	n, err := b.asyncErrs, b.asyncErr
	b.asyncErrs, b.asyncErr = 0, nil
	b.mu.Unlock()
	if n > 0 {
		return fmt.Errorf("%d async publishes failed, first: %w", n, err)
	}
	return nil
}

func (b *Bus) asyncFailed(_ jetstream.JetStream, msg *nats.Msg, err error) {
	b.logger.Warn("async publish failed", "subject", msg.Subject, "err", err)
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.asyncErrs == 0 {
		b.asyncErr = err
	}
	b.asyncErrs++
}

// stream looks up one of the bus's streams.
func (b *Bus) stream(ctx context.Context, name string) (jetstream.Stream, error) {
	switch name {
	case StreamEvents, StreamMetrics, StreamLogs:
	default:
		return nil, fmt.Errorf("%w: %q", ErrUnknownStream, name)
	}
	s, err := b.js.Stream(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", name, err)
	}
	return s, nil
}

package events

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// SubscribeOption tunes Subscribe.
type SubscribeOption func(*subscribeOptions)

type subscribeOptions struct {
	minBackoff, maxBackoff time.Duration
	ackWait                time.Duration
	maxDeliver             int
	deliverNew             bool
}

// WithRetryBackoff sets the delay before a failed event is redelivered: min
// after the first failure, doubling up to max. Defaults: 100ms, 1m.
func WithRetryBackoff(minDelay, maxDelay time.Duration) SubscribeOption {
	return func(o *subscribeOptions) { o.minBackoff, o.maxBackoff = minDelay, maxDelay }
}

// WithAckWait sets how long the server waits for an ack before redelivering
// to another subscriber (30s by default). A running handler keeps its event
// from timing out, so this only matters when a subscriber dies.
func WithAckWait(d time.Duration) SubscribeOption {
	return func(o *subscribeOptions) { o.ackWait = d }
}

// WithMaxDeliver gives up on an event after n failed deliveries: it is
// logged and dropped. By default events are retried forever.
func WithMaxDeliver(n int) SubscribeOption {
	return func(o *subscribeOptions) { o.maxDeliver = n }
}

// WithDeliverNew makes a durable created by this call start with the events
// published after it, instead of all events in the stream. It has no effect
// on an existing durable, which resumes where it left off.
func WithDeliverNew() SubscribeOption {
	return func(o *subscribeOptions) { o.deliverNew = true }
}

// Subscribe attaches the durable consumer durable to stream, filtered by the
// subject pattern filter, and calls h for each event, one at a time. Success
// acks the event; an error redelivers it after a backoff. Subscribers sharing
// a durable name share the work (each event goes to one of them). Subscribe
// returns nil once ctx is done and the in-flight handler has returned, or an
// error if the consumer cannot be set up.
func (b *Bus) Subscribe(ctx context.Context, stream, durable, filter string, h func(context.Context, Event) error) error {
	return b.SubscribeWith(ctx, stream, durable, filter, h)
}

// SubscribeWith is Subscribe with options.
func (b *Bus) SubscribeWith(ctx context.Context, stream, durable, filter string, h func(context.Context, Event) error, opts ...SubscribeOption) error {
	o := subscribeOptions{minBackoff: 100 * time.Millisecond, maxBackoff: time.Minute, ackWait: 30 * time.Second}
	for _, opt := range opts {
		opt(&o)
	}
	if durable == "" {
		return errors.New("durable name is required")
	}
	s, err := b.stream(ctx, stream)
	if err != nil {
		return err
	}
	cc := jetstream.ConsumerConfig{
		Durable:       durable,
		FilterSubject: filter,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       o.ackWait,
		MaxDeliver:    -1,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	}
	if o.deliverNew {
		cc.DeliverPolicy = jetstream.DeliverNewPolicy
	}
	// The deliver policy of an existing durable cannot change; keep it.
	if existing, err := s.Consumer(ctx, durable); err == nil {
		cc.DeliverPolicy = existing.CachedInfo().Config.DeliverPolicy
		cc.OptStartSeq = existing.CachedInfo().Config.OptStartSeq
		cc.OptStartTime = existing.CachedInfo().Config.OptStartTime
	}
	cons, err := s.CreateOrUpdateConsumer(ctx, cc)
	if err != nil {
		return fmt.Errorf("consumer %s on %s: %w", durable, stream, err)
	}
	sub := &subscriber{ctx: ctx, h: h, o: o, logger: b.logger.With("stream", stream, "durable", durable)}
	consumeCtx, err := cons.Consume(sub.handle, jetstream.ConsumeErrHandler(sub.consumeErr))
	if err != nil {
		return fmt.Errorf("consume %s on %s: %w", durable, stream, err)
	}
	<-ctx.Done()
	// Drain hands buffered events to handle, which gives them back at once
	// because ctx is done, so another subscriber gets them without waiting
	// for AckWait.
	consumeCtx.Drain()
	select {
	case <-consumeCtx.Closed():
	case <-time.After(o.ackWait):
		sub.logger.Warn("consumer did not drain in time")
	}
	return nil
}

type subscriber struct {
	ctx    context.Context
	h      func(context.Context, Event) error
	o      subscribeOptions
	logger *slog.Logger
}

func (s *subscriber) consumeErr(_ jetstream.ConsumeContext, err error) {
	if s.ctx.Err() == nil {
		s.logger.Debug("consume", "err", err)
	}
}

func (s *subscriber) handle(msg jetstream.Msg) {
	if s.ctx.Err() != nil {
		_ = msg.Nak()
		return
	}
	e, err := fromMsg(msg)
	if err != nil {
		s.logger.Error("undecodable event dropped", "subject", msg.Subject(), "err", err)
		_ = msg.TermWithReason(err.Error())
		return
	}
	var delivered uint64 = 1
	if md, err := msg.Metadata(); err == nil {
		delivered = md.NumDelivered
	}
	stop := keepInProgress(msg, s.o.ackWait)
	err = s.h(s.ctx, e)
	stop()
	if err == nil {
		// Ack even when ctx is done now: the work is done.
		ackCtx, cancel := context.WithTimeout(context.WithoutCancel(s.ctx), 5*time.Second)
		defer cancel()
		if err := msg.DoubleAck(ackCtx); err != nil {
			s.logger.Warn("ack event", "subject", msg.Subject(), "id", e.ID, "err", err)
		}
		return
	}
	if s.o.maxDeliver > 0 && delivered >= uint64(s.o.maxDeliver) {
		s.logger.Error("event dropped after retries", "subject", msg.Subject(), "id", e.ID, "delivered", delivered, "err", err)
		_ = msg.TermWithReason("max deliveries")
		return
	}
	delay := backoff(delivered, s.o.minBackoff, s.o.maxBackoff)
	if s.ctx.Err() != nil {
		delay = 0 // shutting down: let another subscriber retry at once
	}
	s.logger.Warn("event handler", "subject", msg.Subject(), "id", e.ID, "delivered", delivered, "retry_in", delay, "err", err)
	_ = msg.NakWithDelay(delay)
}

// backoff is minDelay doubled for each delivery after the first, capped at maxDelay.
func backoff(delivered uint64, minDelay, maxDelay time.Duration) time.Duration {
	d := minDelay
	for i := uint64(1); i < delivered && d < maxDelay; i++ {
		d *= 2
	}
	return min(d, maxDelay)
}

// keepInProgress tells the server the event is still being worked on while a
// handler runs longer than a fraction of ackWait. The returned func stops it.
func keepInProgress(msg jetstream.Msg, ackWait time.Duration) func() {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(max(ackWait/3, 10*time.Millisecond))
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				_ = msg.InProgress()
			}
		}
	}()
	return func() {
		close(done)
		<-finished
	}
}

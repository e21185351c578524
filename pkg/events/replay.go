package events

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/nats-io/nats.go/jetstream"
)

// Replay reads stream in order from the beginning, filtered by the subject
// pattern filter, and calls fn for each event. Without follow it returns nil
// after the last event stored when it started; with follow it waits for new
// events until ctx is done and then returns nil. It returns early, with nil,
// when fn returns io.EOF, and with the error when fn returns another one.
func (b *Bus) Replay(ctx context.Context, stream, filter string, follow bool, fn func(Event) error) error {
	return b.ReplayFrom(ctx, stream, filter, 0, follow, fn)
}

// ReplayFrom is Replay starting at stream sequence startSeq (the first event
// when 0); pass the last seen Event.Seq+1 to resume.
func (b *Bus) ReplayFrom(ctx context.Context, stream, filter string, startSeq uint64, follow bool, fn func(Event) error) error {
	s, err := b.stream(ctx, stream)
	if err != nil {
		return err
	}
	cfg := jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverAllPolicy}
	if filter != "" {
		cfg.FilterSubjects = []string{filter}
	}
	if startSeq > 0 {
		cfg.DeliverPolicy = jetstream.DeliverByStartSequencePolicy
		cfg.OptStartSeq = startSeq
	}
	cons, err := s.OrderedConsumer(ctx, cfg)
	if err != nil {
		return fmt.Errorf("replay %s: %w", stream, err)
	}
	it, err := cons.Messages()
	if err != nil {
		return fmt.Errorf("replay %s: %w", stream, err)
	}
	defer it.Stop()
	if !follow {
		if info := cons.CachedInfo(); info != nil && info.NumPending == 0 {
			return nil
		}
	}
	for {
		msg, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			if ctx.Err() != nil {
				if follow {
					return nil
				}
				return ctx.Err()
			}
			return fmt.Errorf("replay %s: %w", stream, err)
		}
		last := false
		if md, err := msg.Metadata(); err == nil {
			last = md.NumPending == 0
		}
		e, err := fromMsg(msg)
		if err != nil {
			b.logger.Warn("undecodable event skipped", "subject", msg.Subject(), "err", err)
		} else if err := fn(e); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		if last && !follow {
			return nil
		}
	}
}

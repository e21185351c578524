package events

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ReadRange reads the messages of stream on subject (wildcards allowed)
// from where cfg starts (its FilterSubjects are set to subject) up to the
// last one stored on subject when it is called, handing each to fn with
// its stream sequence until fn returns false or an error. A stream or a
// subject with nothing stored reads nothing.
func ReadRange(ctx context.Context, js jetstream.JetStream, stream, subject string, cfg jetstream.OrderedConsumerConfig,
	fn func(data []byte, seq uint64) (bool, error)) error {
	st, err := js.Stream(ctx, stream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	lastMsg, err := st.GetLastMsgForSubject(ctx, subject)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	last := lastMsg.Sequence
	cfg.FilterSubjects = []string{subject}
	cons, err := st.OrderedConsumer(ctx, cfg)
	if err != nil {
		return err
	}
	for {
		msg, err := cons.Next(jetstream.FetchMaxWait(time.Second))
		if errors.Is(err, jetstream.ErrNoMessages) || errors.Is(err, nats.ErrTimeout) {
			return nil // the range ends before its last message (aged out meanwhile)
		}
		if err != nil {
			return err
		}
		md, err := msg.Metadata()
		if err != nil {
			return err
		}
		more, err := fn(msg.Data(), md.Sequence.Stream)
		if err != nil || !more || md.Sequence.Stream >= last {
			return err
		}
	}
}

package events

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/oklog/ulid/v2"
)

// Sentinel errors; match them with errors.Is.
var (
	// ErrInvalidEvent means an event cannot be published as it is (bad kind,
	// key or type).
	ErrInvalidEvent = errors.New("invalid event")
	// ErrUnknownStream means a stream name is not one of the bus's streams.
	ErrUnknownStream = errors.New("unknown stream")
)

// Event kinds. The control-plane kinds go to StreamEvents; KindMetrics and
// KindLogs go to StreamMetrics and StreamLogs.
const (
	KindModel      = "model"
	KindDataset    = "dataset"
	KindJob        = "job"
	KindNode       = "node"
	KindDeployment = "deployment"
	KindExperiment = "experiment"
	KindEvaluation = "evaluation"
	KindAlias      = "alias"
	KindAlert      = "alert"
	KindMetrics    = "metrics"
	KindLogs       = "logs"
)

// SubjectPrefix starts every subject on the bus.
const SubjectPrefix = "bmaas"

// HeaderTime carries Event.Time (RFC 3339 with nanoseconds).
const HeaderTime = "Bmaas-Time"

// HeaderProject names the project of the resource an event is about
// (absent: the default project), so that a watch shows a caller only the
// events of its projects.
const HeaderProject = "Bmaas-Project"

// EventKinds returns the kinds carried by StreamEvents.
func EventKinds() []string {
	return []string{KindModel, KindDataset, KindJob, KindNode, KindDeployment, KindExperiment, KindEvaluation, KindAlias, KindAlert}
}

// Event is one message on the bus.
type Event struct {
	// ID is unique per event and deduplicates re-publishes. Publish fills an
	// empty ID with NewID().
	ID string
	// Kind is the object kind, e.g. "model" (see the Kind constants).
	Kind string
	// Key is the object's id or name, e.g. "iris"; it must not contain dots.
	Key string
	// Type is what happened, e.g. "created" or "version.ready"; dots allowed.
	Type string
	// Time is when it happened; Publish fills a zero Time with time.Now().
	Time time.Time
	// Data is the payload, opaque to the bus.
	Data []byte
	// Headers are extra string headers carried with the event.
	Headers map[string]string
	// Seq is the stream sequence of a received event (0 when publishing).
	// Replay can resume after it.
	Seq uint64
}

// Subject is "bmaas.<kind>.<key>.<type>".
func (e Event) Subject() string {
	return SubjectPrefix + "." + e.Kind + "." + e.Key + "." + e.Type
}

// NewID returns a new unique, lexically time-sortable event id (a ULID).
func NewID() string {
	return ulid.Make().String()
}

// Validate checks that the event maps to a well-formed subject on a stream.
func (e Event) Validate() error {
	if _, err := streamForKind(e.Kind); err != nil {
		return err
	}
	if !validToken(e.Key) {
		return fmt.Errorf("%w: key %q: must be a non-empty subject token without dots, wildcards or spaces", ErrInvalidEvent, e.Key)
	}
	if e.Type == "" {
		return fmt.Errorf("%w: type is empty", ErrInvalidEvent)
	}
	for tok := range strings.SplitSeq(e.Type, ".") {
		if !validToken(tok) {
			return fmt.Errorf("%w: type %q: bad token %q", ErrInvalidEvent, e.Type, tok)
		}
	}
	return nil
}

// validToken reports whether s can be one token of a subject.
func validToken(s string) bool {
	if s == "" || s == "*" || s == ">" {
		return false
	}
	return !strings.ContainsAny(s, ". \t\r\n*>")
}

// streamForKind returns the stream that carries kind.
func streamForKind(kind string) (string, error) {
	switch kind {
	case KindMetrics:
		return StreamMetrics, nil
	case KindLogs:
		return StreamLogs, nil
	}
	if slices.Contains(EventKinds(), kind) {
		return StreamEvents, nil
	}
	return "", fmt.Errorf("%w: unknown kind %q", ErrInvalidEvent, kind)
}

// toMsg encodes a validated event with its ID and Time set.
func toMsg(e Event) *nats.Msg {
	m := nats.NewMsg(e.Subject())
	m.Data = e.Data
	for k, v := range e.Headers {
		m.Header.Set(k, v)
	}
	m.Header.Set(jetstream.MsgIDHeader, e.ID)
	m.Header.Set(HeaderTime, e.Time.UTC().Format(time.RFC3339Nano))
	return m
}

// fromMsg decodes a message received from a stream.
func fromMsg(msg jetstream.Msg) (Event, error) {
	subject := msg.Subject()
	rest, ok := strings.CutPrefix(subject, SubjectPrefix+".")
	parts := strings.SplitN(rest, ".", 3)
	if !ok || len(parts) != 3 {
		return Event{}, fmt.Errorf("%w: subject %q", ErrInvalidEvent, subject)
	}
	e := Event{Kind: parts[0], Key: parts[1], Type: parts[2], Data: msg.Data()}
	if md, err := msg.Metadata(); err == nil {
		e.Seq = md.Sequence.Stream
		e.Time = md.Timestamp
	}
	for k, vs := range msg.Headers() {
		if len(vs) == 0 {
			continue
		}
		switch k {
		case jetstream.MsgIDHeader:
			e.ID = vs[0]
		case HeaderTime:
			if t, err := time.Parse(time.RFC3339Nano, vs[0]); err == nil {
				e.Time = t
			}
		default:
			if e.Headers == nil {
				e.Headers = make(map[string]string)
			}
			e.Headers[k] = vs[0]
		}
	}
	return e, nil
}

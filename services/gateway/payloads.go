package gateway

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	gatewayv1 "github.com/bmaas/bmaas/api/bmaas/gateway/v1"
	"github.com/bmaas/bmaas/pkg/apierr"
	"github.com/bmaas/bmaas/pkg/events"
	"github.com/bmaas/bmaas/pkg/telemetry"
)

// Payload logging (Deployment.payload_logging): a sampled share of a
// deployment's requests and responses, as they came and went, goes to
// the JetStream stream BMAAS_PAYLOADS on the subject
// bmaas.payloads.<deployment>, bounded by age and bytes (the oldest go
// first). The request path only hands a record to a bounded queue; one
// goroutine publishes. A full queue drops the record and counts it
// (bmaas_gateway_payloads_dropped_total): logging never slows or fails a
// request.
const (
	payloadStream  = "BMAAS_PAYLOADS"
	payloadSubject = "bmaas.payloads."
	payloadQueue   = 4096
	payloadBatch   = 64
	payloadLinger  = 20 * time.Millisecond
	// payloadHeadroom is left in a message for its headers and framing.
	payloadHeadroom = 16 << 10
)

type payloadLog struct {
	js        jetstream.JetStream
	q         chan *gatewayv1.PayloadRecord
	published prometheus.Counter
	dropped   prometheus.Counter
	truncated prometheus.Counter
	// maxMsg is the most a batch message may hold: the NATS server's
	// max_payload less room for the headers (or less, when set before
	// start).
	maxMsg int
}

func newPayloadLog(reg prometheus.Registerer) *payloadLog {
	p := &payloadLog{q: make(chan *gatewayv1.PayloadRecord, payloadQueue),
		published: prometheus.NewCounter(prometheus.CounterOpts{Name: "bmaas_gateway_payloads_logged_total",
			Help: "Request and response records the gateway published to BMAAS_PAYLOADS."}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{Name: "bmaas_gateway_payloads_dropped_total",
			Help: "Payload records dropped: the publishing queue was full or the stream refused them."}),
		truncated: prometheus.NewCounter(prometheus.CounterOpts{Name: "bmaas_gateway_payloads_truncated_total",
			Help: "Payload records logged without their bodies: with them a record was larger than a NATS message may be."})}
	if reg != nil {
		p.published = telemetry.Register(reg, p.published)
		p.dropped = telemetry.Register(reg, p.dropped)
		p.truncated = telemetry.Register(reg, p.truncated)
	}
	return p
}

// start creates or updates the stream and publishes until ctx ends.
func (p *payloadLog) start(ctx context.Context, nc *nats.Conn, cfg Config) error {
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	if _, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: payloadStream,
		Description: "bmaas deployments' logged requests and responses", Subjects: []string{payloadSubject + ">"},
		Retention: jetstream.LimitsPolicy, Storage: jetstream.FileStorage, Discard: jetstream.DiscardOld,
		MaxAge: cfg.PayloadMaxAge, MaxBytes: cfg.PayloadMaxBytes}); err != nil {
		return fmt.Errorf("stream %s: %w", payloadStream, err)
	}
	p.js = js
	if m := int(nc.MaxPayload()); m > 0 && (p.maxMsg == 0 || m-payloadHeadroom < p.maxMsg) {
		p.maxMsg = max(m-payloadHeadroom, m/2)
	}
	if p.maxMsg == 0 {
		p.maxMsg = 1 << 20
	}
	go p.run(ctx)
	return nil
}

// run publishes the queued records, a deployment's gathered into one
// message of at most payloadBatch records, each batch sent within
// payloadLinger of its first record: one JetStream message costs about
// as much as one record, so batching keeps the stream's cost off the
// gateway's throughput.
func (p *payloadLog) run(ctx context.Context) {
	pending := map[string]*pendingBatch{}
	flush := func(dep string) {
		b := pending[dep]
		delete(pending, dep)
		data, err := proto.Marshal(b.batch)
		n := len(b.batch.Records)
		for _, r := range b.batch.Records {
			recycle(r) // encoded: the bytes are data's
		}
		if err == nil {
			_, err = p.js.PublishAsync(payloadSubject+dep, data)
		}
		if err != nil {
			p.dropped.Add(float64(n))
			return
		}
		p.published.Add(float64(n))
	}
	t := time.NewTimer(time.Hour)
	t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case r := <-p.q:
			size := p.fit(r)
			b := pending[r.Deployment]
			if b != nil && b.size+size > p.maxMsg {
				flush(r.Deployment)
				b = nil
			}
			if b == nil {
				b = &pendingBatch{batch: &gatewayv1.PayloadBatch{}}
				pending[r.Deployment] = b
				if len(pending) == 1 {
					t.Reset(payloadLinger)
				}
			}
			b.batch.Records = append(b.batch.Records, r)
			b.size += size
			if len(b.batch.Records) >= payloadBatch {
				flush(r.Deployment)
			}
		case <-t.C:
			for dep := range pending {
				flush(dep)
			}
		}
	}
}

// records are the payload records, used again once their batch is
// encoded: the request path then copies the bodies into buffers it
// already has, and allocates no record and no timestamp.
var records = sync.Pool{New: func() any { return &gatewayv1.PayloadRecord{Time: &timestamppb.Timestamp{}} }}

// maxKeptBody bounds the body buffers a recycled record keeps.
const maxKeptBody = 64 << 10

// newRecord is an empty record, with its time set to now.
func newRecord() *gatewayv1.PayloadRecord {
	r := records.Get().(*gatewayv1.PayloadRecord)
	now := time.Now()
	r.Time.Seconds, r.Time.Nanos = now.Unix(), int32(now.Nanosecond())
	return r
}

// recycle empties r, keeping its body buffers, for another request.
func recycle(r *gatewayv1.PayloadRecord) {
	req, resp, ts := r.Request[:0], r.Response[:0], r.Time
	if cap(req) > maxKeptBody {
		req = nil
	}
	if cap(resp) > maxKeptBody {
		resp = nil
	}
	if ts == nil {
		ts = &timestamppb.Timestamp{}
	}
	*r = gatewayv1.PayloadRecord{Request: req, Response: resp, Time: ts}
	records.Put(r)
}

// pendingBatch is a deployment's records gathered for one message, and
// their encoded size.
type pendingBatch struct {
	batch *gatewayv1.PayloadBatch
	size  int
}

// fit returns a bound on r's encoded size within a batch, first leaving
// its bodies out (and saying so) when with them it could not go in any
// message: a record too large is logged without its bodies rather than
// lost. The bound is the variable fields' lengths and room for the rest
// (tags, lengths, the fixed-size fields), so no record is encoded twice.
func (p *payloadLog) fit(r *gatewayv1.PayloadRecord) int {
	const fixed = 128
	meta := len(r.RequestId) + len(r.Deployment) + len(r.Protocol) + fixed
	if size := meta + len(r.Request) + len(r.Response); size <= p.maxMsg {
		return size
	}
	r.Request, r.Response, r.Truncated = nil, nil, true
	p.truncated.Inc()
	return meta
}

// sampled says whether a request to d is logged, and what of it.
func sampled(d *gatewayv1.Deployment) (request, response bool) {
	pl := d.GetPayloadLogging()
	if pl.GetSampleRate() <= 0 || (pl.GetSampleRate() < 1 && rand.Float64() >= pl.GetSampleRate()) {
		return false, false
	}
	if !pl.GetRequest() && !pl.GetResponse() {
		return true, true
	}
	return pl.GetRequest(), pl.GetResponse()
}

// payloadCall is one request being logged; nil when it is not.
type payloadCall struct {
	p         *payloadLog
	rec       *gatewayv1.PayloadRecord
	start     time.Time
	keepResp  bool
	keepReq   bool
	responded bool
}

// payloadFor starts logging a request to deployment name when its
// sampling says so (nil otherwise; every method of a nil call does
// nothing).
func (s *Service) payloadFor(ctx context.Context, name, protocol string, request []byte) *payloadCall {
	if s.payloads == nil || s.payloads.js == nil {
		return nil
	}
	var req, resp bool
	if err := s.depCache().View(ctx, deploymentKey(name), func(d *gatewayv1.Deployment) { req, resp = sampled(d) }); err != nil {
		return nil
	}
	if !req && !resp {
		return nil
	}
	rec := newRecord()
	rec.RequestId, rec.Deployment, rec.Protocol = requestIDOf(ctx), name, protocol
	c := &payloadCall{p: s.payloads, start: time.Now(), keepReq: req, keepResp: resp, rec: rec}
	if req {
		rec.Request = append(rec.Request, request...)
	}
	return c
}

// answered records the answer (the version is forward's, withServed).
func (c *payloadCall) answered(status int, response []byte) {
	if c == nil {
		return
	}
	c.rec.Status = int32(status)
	if c.keepResp {
		c.rec.Response = append(c.rec.Response[:0], response...)
	}
	c.responded = true
}

// appendResponse adds a piece of a streamed answer.
func (c *payloadCall) appendResponse(b []byte) {
	if c != nil && c.keepResp && len(c.rec.Response)+len(b) <= maxWatchedBody {
		c.rec.Response = append(c.rec.Response, b...)
	}
}

// done queues the record, or drops it when the queue is full.
func (c *payloadCall) done(err error) {
	if c == nil {
		return
	}
	if !c.responded {
		c.rec.Status = int32(apierr.HTTPStatus(apierr.Code(err)))
	}
	c.rec.LatencySeconds = time.Since(c.start).Seconds()
	select {
	case c.p.q <- c.rec:
	default:
		c.p.dropped.Inc()
		recycle(c.rec)
	}
}

// ListPayloads reads a deployment's records, oldest first, from since;
// the page token is the stream sequence and the index in its batch to go
// on from.
func (s *Service) ListPayloads(ctx context.Context, req *gatewayv1.ListPayloadsRequest) (*gatewayv1.ListPayloadsResponse, error) {
	if req.GetDeployment() == "" {
		return nil, apierr.Invalid("deployment", "required")
	}
	n := int(req.GetPageSize())
	switch {
	case n < 0 || n > 1000:
		return nil, apierr.Invalid("page_size", "must be within 0 and 1000, got %d", n)
	case n == 0:
		n = 100
	}
	if s.payloads == nil || s.payloads.js == nil {
		return nil, apierr.Precondition("payload logging needs NATS JetStream, which this gateway has not")
	}
	subject := payloadSubject + req.GetDeployment()
	cfg := jetstream.OrderedConsumerConfig{}
	skip := 0
	var since time.Time
	switch {
	case req.GetPageToken() != "":
		seqS, idxS, ok := strings.Cut(req.GetPageToken(), ":")
		seq, err1 := strconv.ParseUint(seqS, 10, 64)
		idx, err2 := strconv.Atoi(idxS)
		if !ok || err1 != nil || err2 != nil || seq == 0 || idx < 0 {
			return nil, apierr.Invalid("page_token", "not a token of this list")
		}
		cfg.DeliverPolicy, cfg.OptStartSeq, skip = jetstream.DeliverByStartSequencePolicy, seq, idx
	case req.GetSince() != nil:
		since = req.GetSince().AsTime()
		// A batch is published within payloadLinger of its first record.
		start := since.Add(-time.Second)
		cfg.DeliverPolicy, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, &start
	}
	out := &gatewayv1.ListPayloadsResponse{}
	err := events.ReadRange(ctx, s.payloads.js, payloadStream, subject, cfg, func(data []byte, seq uint64) (bool, error) {
		batch := &gatewayv1.PayloadBatch{}
		if proto.Unmarshal(data, batch) == nil {
			for i, r := range batch.Records {
				if i < skip || (!since.IsZero() && r.GetTime().AsTime().Before(since)) {
					continue
				}
				if len(out.Records) == n {
					out.NextPageToken = fmt.Sprintf("%d:%d", seq, i)
					return false, nil
				}
				out.Records = append(out.Records, r)
			}
		}
		skip = 0
		return true, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// servedKey holds, in a logged request's context, where forward writes
// the version of the replica it called.
type servedKey struct{}

// withServed is ctx with a place for the version that answers.
func (c *payloadCall) withServed(ctx context.Context) context.Context {
	if c == nil {
		return ctx
	}
	return context.WithValue(ctx, servedKey{}, &c.rec.Version)
}

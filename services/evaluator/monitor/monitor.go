package monitor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"

	evaluatorv1 "github.com/bmaas/bmaas/api/bmaas/evaluator/v1"
	gatewayv1 "github.com/bmaas/bmaas/api/bmaas/gateway/v1"
)

// The streams and the bucket the monitor uses (see doc.go).
const (
	PayloadStream   = "BMAAS_PAYLOADS"
	FeedbackStream  = "BMAAS_FEEDBACK"
	FeedbackSubject = "bmaas.feedback."
	WindowBucket    = "BMAAS_MONITOR"
)

// Config sizes the monitor.
type Config struct {
	// Window is the length of a monitoring window.
	Window time.Duration
	// Horizon is how far back the payload log is replayed on start, and
	// how late feedback may come.
	Horizon time.Duration
	// Retention is how long a window's results are kept.
	Retention time.Duration
	// MaxSamples bounds the values of a column kept per window for the
	// drift tests (a uniform sample of them beyond).
	MaxSamples int
	// MaxIndexed bounds the predictions remembered for feedback joins.
	MaxIndexed int
	// MinRows is the rows a window needs before rules read its drift.
	MinRows int
}

// Deps are the monitor's dependencies.
type Deps struct {
	JetStream jetstream.JetStream
	Versions  Versions
	// Replicas reads a deployment's ready replicas (nil: not recorded).
	Replicas   func(ctx context.Context, deployment string) (int32, error)
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	Now        func() time.Time
}

// Monitor follows the payload log and the feedback stream, keeps recent
// windows in memory, and (on the leader) writes their results.
type Monitor struct {
	cfg      Config
	js       jetstream.JetStream
	kv       jetstream.KeyValue
	log      *slog.Logger
	now      func() time.Time
	versions versionCache
	replicas func(ctx context.Context, deployment string) (int32, error)
	gauges   *gauges

	mu      sync.Mutex
	deps    map[string]map[int64]*window
	index   map[string]*prediction
	fifo    []string
	orphans map[string][]*evaluatorv1.Feedback
	applied atomic.Uint64 // the last payload stream sequence ingested
	started chan struct{}
}

// prediction is what the join with feedback needs of a logged request.
type prediction struct {
	deployment string
	win        int64
	rows       int
	labels     []string
	values     []float64
	proba      []float64
	k          int
	fed        bool
}

// New builds a monitor; Run starts it.
func New(cfg Config, deps Deps) *Monitor {
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	return &Monitor{cfg: cfg, js: deps.JetStream, log: deps.Logger, now: deps.Now,
		versions: versionCache{get: deps.Versions}, replicas: deps.Replicas, gauges: newGauges(deps.Registerer),
		deps: map[string]map[int64]*window{}, index: map[string]*prediction{}, orphans: map[string][]*evaluatorv1.Feedback{},
		started: make(chan struct{})}
}

// Run creates the feedback stream and the window bucket, then follows the
// payload log and the feedback until ctx ends.
func (m *Monitor) Run(ctx context.Context) error {
	if _, err := m.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: FeedbackStream,
		Description: "ground truth given for bmaas deployments' logged requests", Subjects: []string{FeedbackSubject + ">"},
		Storage: jetstream.FileStorage, MaxAge: m.cfg.Horizon}); err != nil {
		return fmt.Errorf("stream %s: %w", FeedbackStream, err)
	}
	kv, err := m.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: WindowBucket,
		Description: "bmaas deployments' monitoring windows", TTL: m.cfg.Retention, Storage: jetstream.FileStorage})
	if err != nil {
		return fmt.Errorf("bucket %s: %w", WindowBucket, err)
	}
	m.kv = kv
	if _, err := m.nodeStream(ctx); err != nil {
		return fmt.Errorf("stream %s: %w", NodeUsageStream, err)
	}
	close(m.started)
	from := m.now().Add(-m.cfg.Horizon)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); m.follow(ctx, PayloadStream, from, m.ingestBatch) }()
	go func() { defer wg.Done(); m.follow(ctx, FeedbackStream, from, m.replayFeedback) }()
	wg.Wait()
	return nil
}

// follow reads a stream from a time with an ordered consumer, again after
// any failure (the payload stream is the gateway's and may not exist yet).
func (m *Monitor) follow(ctx context.Context, stream string, from time.Time, handle func(ctx context.Context, data []byte, seq uint64)) {
	var last uint64
	for ctx.Err() == nil {
		cfg := jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverByStartTimePolicy, OptStartTime: &from}
		if last > 0 {
			cfg = jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: last + 1}
		}
		err := func() error {
			cons, err := m.js.OrderedConsumer(ctx, stream, cfg)
			if err != nil {
				return err
			}
			it, err := cons.Messages()
			if err != nil {
				return err
			}
			defer it.Stop()
			go func() { <-ctx.Done(); it.Stop() }()
			for {
				msg, err := it.Next()
				if err != nil {
					return err
				}
				md, err := msg.Metadata()
				if err != nil {
					continue
				}
				last = md.Sequence.Stream
				handle(ctx, msg.Data(), last)
			}
		}()
		if ctx.Err() != nil {
			return
		}
		if !errors.Is(err, jetstream.ErrStreamNotFound) {
			m.log.Debug("follow stream", "stream", stream, "err", err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

// ingestBatch counts one message of the payload log.
func (m *Monitor) ingestBatch(ctx context.Context, data []byte, seq uint64) {
	b := &gatewayv1.PayloadBatch{}
	if proto.Unmarshal(data, b) == nil {
		for _, r := range b.GetRecords() {
			m.ingest(ctx, r)
		}
	}
	m.applied.Store(seq)
}

// windowStart is the start of the window holding t, in Unix seconds.
func (m *Monitor) windowStart(t time.Time) int64 {
	return t.Truncate(m.cfg.Window).Unix()
}

// windowOf returns deployment's window at start, made when missing.
// m.mu is held.
func (m *Monitor) windowOf(deployment string, start int64) *window {
	ws := m.deps[deployment]
	if ws == nil {
		ws = map[int64]*window{}
		m.deps[deployment] = ws
	}
	w := ws[start]
	if w == nil {
		w = newWindow(time.Unix(start, 0))
		ws[start] = w
	}
	return w
}

// readInputs says whether a record of deployment's window at start has
// its inputs read: every record until the window has MaxSamples rows,
// then a uniform share of them (MaxSamples over the rows so far), since
// the drift tests keep no more values than that. The answers are always
// read: they count the rows and feedback joins them.
func (m *Monitor) readInputs(deployment string, start int64) bool {
	m.mu.Lock()
	var rows int64
	if w := m.deps[deployment][start]; w != nil {
		rows = w.rows
	}
	m.mu.Unlock()
	max := int64(m.cfg.MaxSamples)
	return rows < max || rand.Int64N(rows) < max
}

// ingest counts one record in its window and remembers its predictions
// for feedback.
func (m *Monitor) ingest(ctx context.Context, r *gatewayv1.PayloadRecord) {
	t := r.GetTime().AsTime()
	if t.Before(m.now().Add(-m.cfg.Horizon)) {
		return
	}
	var d *decoded
	var vi *versionInfo
	schemaErr := false
	start := m.windowStart(t)
	if len(r.GetRequest()) > 0 && r.GetVersion() > 0 {
		var err error
		if vi, err = m.versions.lookup(ctx, r.GetDeployment(), r.GetVersion()); err != nil {
			m.log.Warn("monitor version", "deployment", r.GetDeployment(), "version", r.GetVersion(), "err", err)
		} else if d, err = decode(r, vi, m.readInputs(r.GetDeployment(), start)); err != nil {
			schemaErr = true
			d = nil
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	w := m.windowOf(r.GetDeployment(), start)
	if w.sealed {
		// A record older than a closed window (a replay's overlap) is
		// already counted there.
		return
	}
	w.requests++
	if r.GetStatus() >= 400 {
		w.errors++
	}
	w.latencies.add(r.GetLatencySeconds(), m.cfg.MaxSamples)
	if r.GetVersion() > 0 {
		w.versions[r.GetVersion()]++
	}
	if schemaErr {
		w.schema++
	}
	w.dirty = true
	if d == nil || d.rows == 0 {
		return
	}
	w.add(d, vi, m.cfg.MaxSamples)
	m.gauges.rows.Add(float64(d.rows))
	if r.GetRequestId() == "" || (d.labels == nil && d.values == nil) {
		return
	}
	key := r.GetDeployment() + "/" + r.GetRequestId()
	if _, dup := m.index[key]; !dup {
		m.fifo = append(m.fifo, key)
	}
	m.index[key] = &prediction{deployment: r.GetDeployment(), win: start, rows: d.rows, labels: d.labels, values: d.values, proba: d.proba, k: d.k}
	for len(m.fifo) > m.cfg.MaxIndexed {
		delete(m.index, m.fifo[0])
		m.fifo = m.fifo[1:]
	}
	if fs, ok := m.orphans[key]; ok {
		delete(m.orphans, key)
		for _, f := range fs {
			m.applyLocked(m.index[key], f)
		}
	}
}

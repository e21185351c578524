package registry

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
	"github.com/bmaas/bmaas/pkg/blob"
	"github.com/bmaas/bmaas/pkg/events"
	"github.com/bmaas/bmaas/pkg/iam"
	"github.com/bmaas/bmaas/pkg/store"
)

// Registry implements the registry's operations.
type Registry struct {
	cfg    Config
	st     *store.Store
	blobs  blob.Store
	pub    Publisher
	log    *slog.Logger
	now    func() time.Time
	gcKick chan struct{}

	uploadBytes *prometheus.CounterVec
	gcDeleted   prometheus.Counter

	// models and versions are served from watch-backed caches.
	models   *store.Cache[*registryv1.Model]
	versions *store.Cache[*registryv1.ModelVersion]
}

func newRegistry(cfg Config, deps Deps) (*Registry, error) {
	r := &Registry{
		cfg: cfg, st: deps.Store, blobs: deps.Blobs, pub: deps.Events, log: deps.Logger, now: deps.Now,
		gcKick: make(chan struct{}, 1),
		uploadBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bmaas_registry_upload_bytes_total",
			Help: "Bytes received in artifact and dataset uploads.",
		}, []string{"kind"}),
		gcDeleted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "bmaas_registry_blobs_collected_total",
			Help: "Unreferenced blobs deleted by the sweep.",
		}),
	}
	r.models = store.NewCache(r.st, modelsPrefix(), func() *registryv1.Model { return &registryv1.Model{} }, r.log)
	r.versions = store.NewCache(r.st, store.Key("versions")+"/", func() *registryv1.ModelVersion { return &registryv1.ModelVersion{} }, r.log)
	for _, c := range []prometheus.Collector{r.uploadBytes, r.gcDeleted} {
		if err := deps.Registerer.Register(c); err != nil {
			return nil, fmt.Errorf("registry metrics: %w", err)
		}
	}
	return r, nil
}

// Keys. Model and dataset names are qualified by their project
// ("vision/resnet"); a key holds iam.NameKey's segment for one.
func modelKey(name string) string { return store.Key("models", iam.NameKey(name)) }
func modelsPrefix() string        { return store.Key("models") + "/" }
func versionKey(model string, v int64) string {
	return store.Key("versions", iam.NameKey(model), versionSuffix(v))
}
func versionsPrefix(model string) string { return store.Key("versions", iam.NameKey(model)) + "/" }
func datasetKey(name string) string      { return store.Key("datasets", iam.NameKey(name)) }
func datasetsPrefix() string             { return store.Key("datasets") + "/" }
func datasetVersionKey(name string, v int64) string {
	return store.Key("dataset-versions", iam.NameKey(name), versionSuffix(v))
}
func datasetVersionsPrefix(name string) string {
	return store.Key("dataset-versions", iam.NameKey(name)) + "/"
}

func (r *Registry) ts() *timestamppb.Timestamp { return timestamppb.New(r.now()) }

// publish sends an event after a committed change. The change is already
// durable in etcd, so a lost event is logged and is not an error for the
// caller: consumers take an event as a hint and reconcile from state (the
// evaluator's leader sweeps the registry for READY versions whose
// version.ready it missed; see services/evaluator's package doc).
func (r *Registry) publish(ctx context.Context, kind, key, typ string, msg proto.Message) {
	if r.pub == nil {
		return
	}
	data, err := protojson.Marshal(msg)
	if err != nil {
		r.log.Warn("encode event", "kind", kind, "type", typ, "err", err)
		return
	}
	e := events.Event{Kind: kind, Key: key, Type: typ, Time: r.now(), Data: data,
		Headers: map[string]string{"Content-Type": "application/json", "Bmaas-Type": string(msg.ProtoReflect().Descriptor().FullName())}}
	if kind == events.KindModel || kind == events.KindDataset {
		e.Headers[events.HeaderProject] = iam.ProjectOfName(key)
	}
	if err := r.pub.PublishAsync(e); err != nil {
		r.log.Warn("publish event", "kind", kind, "key", key, "type", typ, "err", err)
	}
}

// commit applies a transaction touching models or versions and makes the
// caches wait for it before the next read.
func (r *Registry) commit(ctx context.Context, conds []store.Cond, ops ...store.Op) (int64, error) {
	rev, err := r.st.Commit(ctx, conds, ops...)
	if err == nil {
		r.models.Observe(rev)
		r.versions.Observe(rev)
	}
	return rev, err
}

func (r *Registry) kickGC() {
	select {
	case r.gcKick <- struct{}{}:
	default:
	}
}

package iam

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	iamv1 "github.com/bmaas/bmaas/api/bmaas/iam/v1"
	"github.com/bmaas/bmaas/pkg/authz"
	"github.com/bmaas/bmaas/pkg/telemetry"
)

// The audit trail: every state-changing call and every refused one, one
// iamv1.AuditRecord per message in the JetStream stream BMAAS_AUDIT on
// bmaas.audit.<project> (bmaas.audit._cluster for the cluster's own
// resources), append-only (no deletes, no purges) and kept for the
// retention.
const (
	AuditStream     = "BMAAS_AUDIT"
	AuditSubject    = "bmaas.audit."
	auditCluster    = "_cluster"
	auditQueue      = 8192
	requestIDHeader = "x-request-id"
)

// AuditSubjects matches the records of every project.
const AuditSubjects = AuditSubject + ">"

// AuditSubjectOf is the subject of a project's records.
func AuditSubjectOf(project string) string {
	if project == "" {
		project = auditCluster
	}
	return AuditSubject + project
}

// Auditor publishes audit records; the request path only queues them.
type Auditor struct {
	js      jetstream.JetStream
	q       chan *iamv1.AuditRecord
	log     *slog.Logger
	dropped prometheus.Counter
}

// NewAuditor creates (or updates) the stream with its retention and
// publishes until ctx ends.
func NewAuditor(ctx context.Context, nc *nats.Conn, retention time.Duration, reg prometheus.Registerer, log *slog.Logger) (*Auditor, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	if _, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: AuditStream,
		Description: "bmaas audit trail: state changes and refused calls", Subjects: []string{AuditSubjects},
		Retention: jetstream.LimitsPolicy, Storage: jetstream.FileStorage, MaxAge: retention,
		DenyDelete: true, DenyPurge: true}); err != nil {
		return nil, fmt.Errorf("stream %s: %w", AuditStream, err)
	}
	a := &Auditor{js: js, q: make(chan *iamv1.AuditRecord, auditQueue), log: log,
		dropped: prometheus.NewCounter(prometheus.CounterOpts{Name: "bmaas_audit_records_dropped_total",
			Help: "Audit records lost: the queue was full or the stream refused them."})}
	if reg != nil {
		a.dropped = telemetry.Register(reg, a.dropped)
	}
	go a.run(ctx)
	return a, nil
}

func (a *Auditor) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			a.drain()
			return
		case r := <-a.q:
			a.publish(ctx, r)
		}
	}
}

// drain publishes what is queued when the process stops.
func (a *Auditor) drain() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for {
		select {
		case r := <-a.q:
			a.publish(ctx, r)
		default:
			return
		}
	}
}

func (a *Auditor) publish(ctx context.Context, r *iamv1.AuditRecord) {
	data, err := proto.Marshal(r)
	if err == nil {
		_, err = a.js.PublishAsync(AuditSubjectOf(r.GetProject()), data)
	}
	if err != nil {
		a.dropped.Inc()
		a.log.Warn("audit record lost", "method", r.GetMethod(), "err", err)
	}
	_ = ctx
}

// Record queues r (a full queue loses it, counted and logged).
func (a *Auditor) Record(r *iamv1.AuditRecord) {
	if a == nil {
		return
	}
	select {
	case a.q <- r:
	default:
		a.dropped.Inc()
		a.log.Warn("audit record lost: queue full", "method", r.GetMethod())
	}
}

// record audits a gRPC call.
func (g *Guard) record(ctx context.Context, c *Caller, method string, perm authz.Permission, project string, req any, code codes.Code, msg string) {
	if g.audit == nil {
		return
	}
	r := &iamv1.AuditRecord{Time: timestamppb.Now(), Method: method, Project: project, Code: code.String(), Message: msg,
		Address: address(ctx, c)}
	if perm.Resource != "" {
		r.Permission = perm.String()
	}
	if c != nil && c.Principal != nil {
		r.Identity, r.TokenId = c.Principal.Identity, c.Principal.TokenID
	} else if c == nil || code != codes.Unauthenticated {
		r.Identity = "anonymous"
	}
	if v := metadata.ValueFromIncomingContext(ctx, requestIDHeader); len(v) > 0 {
		r.RequestId = v[0]
	}
	if m, ok := req.(proto.Message); ok {
		r.Resource, r.Fields = resourceOf(m), fieldsOf(m)
	}
	g.audit.Record(r)
}

// recordHTTP audits a request to a route of the edge's own.
func (g *Guard) recordHTTP(r *http.Request, c *Caller, route string, perm authz.Permission, project string, code codes.Code, msg string) {
	if g.audit == nil {
		return
	}
	rec := &iamv1.AuditRecord{Time: timestamppb.Now(), Method: route, Project: project, Code: code.String(), Message: msg,
		Address: r.RemoteAddr, Identity: c.Principal.Name(), RequestId: r.Header.Get("X-Request-Id")}
	if code == codes.Unauthenticated {
		rec.Identity = ""
	}
	if c.Principal != nil {
		rec.TokenId = c.Principal.TokenID
	}
	if perm.Resource != "" {
		rec.Permission = perm.String()
	}
	g.audit.Record(rec)
}

// resourceFields name what a request is about, most telling first.
var resourceFields = []protoreflect.Name{"name", "id", "deployment", "model", "model_name", "dataset", "job_id", "experiment"}

// resourceOf is the name or id a request is about: a field of the
// request's, or of the one message it carries (CreateModel's model).
func resourceOf(m proto.Message) string {
	pr := m.ProtoReflect()
	if s := nameField(pr); s != "" {
		return s
	}
	var out string
	pr.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd.Kind() == protoreflect.MessageKind && !fd.IsList() && !fd.IsMap() {
			out = nameField(v.Message())
		}
		return out == ""
	})
	return out
}

func nameField(pr protoreflect.Message) string { return stringField(pr, resourceFields...) }

// fieldsOf are the fields a request sets: its update mask's paths, or
// the names of its set fields (a carried message's as "model.labels").
func fieldsOf(m proto.Message) []string {
	pr := m.ProtoReflect()
	var out []string
	var mask *fieldmaskpb.FieldMask
	pr.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd.Kind() != protoreflect.MessageKind || fd.IsList() || fd.IsMap() {
			out = append(out, string(fd.Name()))
			return len(out) < 64
		}
		if fm, ok := v.Message().Interface().(*fieldmaskpb.FieldMask); ok {
			mask = fm
			return false
		}
		if fd.Message().FullName().Parent() == "google.protobuf" {
			out = append(out, string(fd.Name()))
			return len(out) < 64
		}
		v.Message().Range(func(sub protoreflect.FieldDescriptor, _ protoreflect.Value) bool {
			out = append(out, string(fd.Name())+"."+string(sub.Name()))
			return len(out) < 64
		})
		return len(out) < 64
	})
	if mask != nil {
		return mask.GetPaths()
	}
	return out
}

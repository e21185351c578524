package evaluator

import (
	"context"
	"log/slog"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	evaluatorv1 "github.com/bmaas/bmaas/api/bmaas/evaluator/v1"
	gatewayv1 "github.com/bmaas/bmaas/api/bmaas/gateway/v1"
	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
	schedulerv1 "github.com/bmaas/bmaas/api/bmaas/scheduler/v1"
	"github.com/bmaas/bmaas/api/inference"
	"github.com/bmaas/bmaas/pkg/events"
	"github.com/bmaas/bmaas/pkg/iam"
	"github.com/bmaas/bmaas/pkg/store"
)

// Evaluator implements evaluations, policies, decisions and experiments.
type Evaluator struct {
	cfg       Config
	cli       *clientv3.Client
	st        *store.Store
	bus       *events.Bus
	log       *slog.Logger
	now       func() time.Time
	registry  func() (registryv1.RegistryServiceClient, error)
	scheduler func() (schedulerv1.SchedulerServiceClient, error)
	// gateway reaches the deployment API and the data plane, through
	// which versions that are not NATIVE are evaluated (served.go).
	gateway func() (gatewayv1.DeploymentServiceClient, inference.GRPCInferenceServiceClient, error)
	// watch runs while leading: monitoring windows and alert rules.
	watch func(ctx context.Context, fence clientv3.Cmp)
	// exportPayloads makes a dataset of a deployment's payloads and
	// feedback (the monitor's; nil without one).
	exportPayloads func(ctx context.Context, req *evaluatorv1.CreateDatasetFromPayloadsRequest) (*evaluatorv1.CreateDatasetFromPayloadsResponse, error)
}

// Keys.
func evaluationKey(id string) string      { return store.Key("evaluations", id) }
func evaluationsPrefix() string           { return store.Key("evaluations") + "/" }
func policyKey(model string) string       { return store.Key("evaluation-policies", iam.NameKey(model)) }
func decisionKey(model, id string) string { return store.Key("decisions", iam.NameKey(model), id) }
func decisionsPrefix(model string) string { return store.Key("decisions", iam.NameKey(model)) + "/" }
func experimentKey(id string) string      { return store.Key("experiments", id) }
func experimentsPrefix() string           { return store.Key("experiments") + "/" }
func searchStateKey(id string) string     { return store.Key("experiment-states", id) }
func trialKey(exp, id string) string      { return store.Key("trials", exp, id) }
func trialsPrefix(exp string) string      { return store.Key("trials", exp) + "/" }

// publish sends an event after a committed change; the change is durable
// in etcd, so a lost event is logged, not returned.
func (e *Evaluator) publish(kind, key, typ string, msg proto.Message) {
	if e.bus == nil {
		return
	}
	data, err := protojson.Marshal(msg)
	if err != nil {
		e.log.Warn("encode event", "kind", kind, "type", typ, "err", err)
		return
	}
	ev := events.Event{Kind: kind, Key: key, Type: typ, Time: e.now(), Data: data,
		Headers: map[string]string{"Content-Type": "application/json", "Bmaas-Type": string(msg.ProtoReflect().Descriptor().FullName())}}
	switch m := msg.(type) {
	case *evaluatorv1.Experiment:
		ev.Headers[events.HeaderProject] = projectOfExperiment(m)
	case *evaluatorv1.Evaluation:
		ev.Headers[events.HeaderProject] = iam.ProjectOfName(m.GetModel())
	default:
		if kind == events.KindModel {
			ev.Headers[events.HeaderProject] = iam.ProjectOfName(key)
		}
	}
	if err := e.bus.PublishAsync(ev); err != nil {
		e.log.Warn("publish event", "kind", kind, "key", key, "type", typ, "err", err)
	}
}

package gateway

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	gatewayv1 "github.com/bmaas/bmaas/api/bmaas/gateway/v1"
	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
	"github.com/bmaas/bmaas/pkg/apierr"
	"github.com/bmaas/bmaas/pkg/iam"
	"github.com/bmaas/bmaas/pkg/runtimes"
	"github.com/bmaas/bmaas/pkg/store"
)

// Limits of a deployment spec.
const (
	maxReplicas        = 1000
	defaultConcurrency = 4
)

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

// deploymentKey is where a deployment (its name qualified by its
// project) lives.
func deploymentKey(name string) string { return store.Key("deployments", iam.NameKey(name)) }

// ParseModelRef splits "name@ref" into the model and the reference (a
// version number or an alias; "latest" when absent).
func ParseModelRef(ref string) (model, target string, err error) {
	model, target, _ = strings.Cut(ref, "@")
	if iam.CheckQualifiedMatch("deployment.model", model, nameRE) != nil {
		return "", "", apierr.Invalid("deployment.model", "want [PROJECT/]NAME@VERSION or [PROJECT/]NAME@ALIAS, got %q", ref)
	}
	if target == "" {
		target = "latest"
	}
	return model, target, nil
}

// normalize checks a deployment spec and fills its defaults: with
// min_replicas 0 the idle time before it scales to zero (the gateway's
// default when it names none); above 0 no idle time, as it never goes to
// zero.
func (s *Service) normalize(ctx context.Context, d *gatewayv1.Deployment) error {
	if d == nil {
		return apierr.Invalid("deployment", "required")
	}
	model, _, err := ParseModelRef(d.Model)
	if err != nil {
		return err
	}
	if d.Name == "" {
		// Named after its model, in the call's project.
		_, bare := iam.SplitName(model)
		d.Name = iam.QualifiedName(iam.ProjectFrom(ctx), bare)
	}
	if err := iam.CheckQualifiedMatch("deployment.name", d.Name, nameRE); err != nil {
		return err
	}
	switch {
	case d.MinReplicas < 0 || d.MinReplicas > maxReplicas:
		return apierr.Invalid("deployment.min_replicas", "must be within 0 and %d, got %d", maxReplicas, d.MinReplicas)
	case d.MaxReplicas < 0 || d.MaxReplicas > maxReplicas:
		return apierr.Invalid("deployment.max_replicas", "must be within 0 and %d, got %d", maxReplicas, d.MaxReplicas)
	case d.MaxReplicas != 0 && d.MaxReplicas < d.MinReplicas:
		return apierr.Invalid("deployment.max_replicas", "must be at least min_replicas (%d), got %d", d.MinReplicas, d.MaxReplicas)
	case d.TargetConcurrency < 0:
		return apierr.Invalid("deployment.target_concurrency", "must not be negative, got %d", d.TargetConcurrency)
	case d.GetPayloadLogging().GetSampleRate() < 0 || d.GetPayloadLogging().GetSampleRate() > 1:
		return apierr.Invalid("deployment.payload_logging.sample_rate", "must be within 0 and 1, got %g", d.GetPayloadLogging().GetSampleRate())
	case gatewayv1.Routing_name[int32(d.Routing)] == "":
		return apierr.Invalid("deployment.routing", "unknown value %d (ROUTING_ROUND_ROBIN, ROUTING_LEAST_LOADED or ROUTING_PREFIX)", d.Routing)
	case d.MaxBatchSize < 0 || d.MaxBatchSize > 1<<16:
		return apierr.Invalid("deployment.max_batch_size", "must be within 0 and 65536, got %d", d.MaxBatchSize)
	case d.MaxQueueDelayMicros < 0 || d.MaxQueueDelayMicros > 10_000_000:
		return apierr.Invalid("deployment.max_queue_delay_micros", "must be within 0 and 10000000, got %d", d.MaxQueueDelayMicros)
	case d.CanaryPercent < 0 || d.CanaryPercent > 100:
		return apierr.Invalid("deployment.canary_percent", "must be within 0 and 100, got %d", d.CanaryPercent)
	case d.CanaryPercent > 0 && d.CanaryVersion <= 0:
		return apierr.Invalid("deployment.canary_version", "required with canary_percent")
	case d.CanaryVersion < 0:
		return apierr.Invalid("deployment.canary_version", "must not be negative")
	case d.ScaleToZeroSeconds < 0:
		return apierr.Invalid("deployment.scale_to_zero_seconds", "must not be negative")
	}
	if d.MaxReplicas == 0 {
		d.MaxReplicas = max(d.MinReplicas, 1)
	}
	if d.TargetConcurrency == 0 {
		d.TargetConcurrency = defaultConcurrency
	}
	switch {
	case d.MinReplicas > 0:
		d.ScaleToZeroSeconds = 0
	case d.ScaleToZeroSeconds == 0:
		d.ScaleToZeroSeconds = int64(s.cfg.ScaleToZeroAfter.Round(time.Second) / time.Second)
	}
	if d.Resources != nil {
		r := d.Resources
		if r.CpuMillis < 0 || r.CpuLimitMillis < 0 || r.MemoryBytes < 0 || r.Gpus < 0 || r.GpuMemoryBytes < 0 {
			return apierr.Invalid("deployment.resources", "must not be negative")
		}
	}
	if d.Runtime != "" && !nameRE.MatchString(d.Runtime) {
		return apierr.Invalid("deployment.runtime", "must match %s, got %q", nameRE, d.Runtime)
	}
	for k := range d.Parameters {
		if !paramRE.MatchString(k) {
			return apierr.Invalid("deployment.parameters", "bad name %q: letters, digits and _, not starting with a digit ({{.Params.%s}} in a server's arguments)", k, k)
		}
	}
	return nil
}

// paramRE is a parameter's name: one a template can name as {{.Params.x}}.
var paramRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,63}$`)

// versionRuntime resolves a deployment's model reference and picks its
// runtime for the version found (see chooseRuntime).
func (s *Service) versionRuntime(ctx context.Context, d *gatewayv1.Deployment) (*registryv1.ModelVersion, *gatewayv1.Runtime, error) {
	mv, err := s.resolveVersion(ctx, d.Model)
	if err != nil {
		return nil, nil, err
	}
	all, err := s.allRuntimes(ctx)
	if err != nil {
		return nil, nil, err
	}
	rt, err := chooseRuntime(all, iam.ProjectOfName(d.Name), d.Runtime, runtimes.FormatName(mv.GetFormat()), versionName(mv))
	return mv, rt, err
}

// versionName describes a version for messages: "version 3 of bc".
func versionName(mv *registryv1.ModelVersion) string {
	return fmt.Sprintf("version %d of %s", mv.GetVersion(), mv.GetModel())
}

// Create stores a new deployment after checking its model reference
// resolves; the leader starts its replicas.
func (s *Service) Create(ctx context.Context, d *gatewayv1.Deployment) (*gatewayv1.Deployment, error) {
	d = proto.Clone(d).(*gatewayv1.Deployment)
	if err := s.normalize(ctx, d); err != nil {
		return nil, err
	}
	if err := iam.ProjectExists(ctx, s.st, "deployment.name", iam.ProjectOfName(d.Name)); err != nil {
		return nil, err
	}
	for attempt := 0; ; attempt++ {
		quota, err := s.checkQuota(ctx, d)
		if err != nil {
			return nil, err
		}
		mv, rt, err := s.versionRuntime(ctx, d)
		if err != nil {
			return nil, err
		}
		now := timestamppb.New(s.now())
		d.State, d.CreateTime, d.UpdateTime, d.Etag = "CREATING", now, now, ""
		d.Status = &gatewayv1.DeploymentStatus{Version: mv.GetVersion(), Runtime: rt.Name}
		conds, ops := useRuntime(rt)
		conds = append(conds, quota...)
		rev, err := s.st.Commit(ctx, append([]store.Cond{{Key: deploymentKey(d.Name)}}, conds...),
			append([]store.Op{store.Put(deploymentKey(d.Name), d)}, ops...)...)
		if store.IsStale(err) {
			if _, _, gerr := s.get(ctx, d.Name); gerr == nil {
				return nil, apierr.AlreadyExists("deployment", d.Name)
			}
			if attempt < 10 {
				continue // the runtime changed (or is being deleted), or the project's deployments: again
			}
		}
		if err != nil {
			return nil, err
		}
		d.Etag = store.Etag(rev)
		s.kick()
		return fillDeployment(d), nil
	}
}

// Get returns a deployment with its etag.
func (s *Service) Get(ctx context.Context, name string) (*gatewayv1.Deployment, error) {
	d, _, err := s.get(ctx, name)
	return d, err
}

func (s *Service) get(ctx context.Context, name string) (*gatewayv1.Deployment, int64, error) {
	if name == "" {
		return nil, 0, apierr.Invalid("name", "required")
	}
	d := &gatewayv1.Deployment{}
	rev, err := s.st.Get(ctx, deploymentKey(name), d)
	if errors.Is(err, store.ErrNotFound) {
		return nil, 0, apierr.NotFound("deployment", name)
	}
	if err != nil {
		return nil, 0, err
	}
	d.Etag = store.Etag(rev)
	return fillDeployment(d), rev, nil
}

// List pages through the deployments of the call's project.
func (s *Service) List(ctx context.Context, req *gatewayv1.ListDeploymentsRequest) (*gatewayv1.ListDeploymentsResponse, error) {
	n, err := store.PageSize("page_size", req.GetPageSize())
	if err != nil {
		return nil, err
	}
	project := iam.ProjectFrom(ctx)
	items, next, err := store.List(ctx, s.st, iam.ProjectPrefix(deploymentKey(""), project), n, req.GetPageToken(),
		func() *gatewayv1.Deployment { return &gatewayv1.Deployment{} },
		func(d *gatewayv1.Deployment) bool { return iam.InProject(d.GetName(), project) })
	if err != nil {
		return nil, err
	}
	out := &gatewayv1.ListDeploymentsResponse{NextPageToken: next}
	for _, it := range items {
		it.Msg.Etag = store.Etag(it.Rev)
		out.Deployments = append(out.Deployments, fillDeployment(it.Msg))
	}
	return out, nil
}

// Rollback pins the deployment to the version it served before its last
// rollout.
func (s *Service) Rollback(ctx context.Context, name string) (*gatewayv1.Deployment, error) {
	return s.modifyErr(ctx, name, "", func(cur *gatewayv1.Deployment) error {
		prev := cur.GetStatus().GetPreviousVersion()
		if prev <= 0 {
			return apierr.Precondition("deployment %q has no previous version", name)
		}
		model, _, _ := ParseModelRef(cur.Model)
		cur.Model = model + "@" + strconv.FormatInt(prev, 10)
		return nil
	})
}

func (s *Service) modify(ctx context.Context, name, etag string, fn func(*gatewayv1.Deployment)) (*gatewayv1.Deployment, error) {
	return s.modifyErr(ctx, name, etag, func(d *gatewayv1.Deployment) error { fn(d); return nil })
}

// modifyErr reads, changes and writes a deployment with a revision
// check; without an etag it retries lost races.
func (s *Service) modifyErr(ctx context.Context, name, etag string, fn func(*gatewayv1.Deployment) error) (*gatewayv1.Deployment, error) {
	return s.modifyCond(ctx, name, etag, func(d *gatewayv1.Deployment) ([]store.Cond, error) { return nil, fn(d) })
}

// modifyCond is modifyErr whose fn also gives conditions for the write
// (a quota's).
func (s *Service) modifyCond(ctx context.Context, name, etag string, fn func(*gatewayv1.Deployment) ([]store.Cond, error)) (*gatewayv1.Deployment, error) {
	for attempt := 0; ; attempt++ {
		cur, rev, err := s.get(ctx, name)
		if err != nil {
			return nil, err
		}
		if etag != "" {
			want, err := store.ParseEtag("deployment.etag", etag)
			if err != nil {
				return nil, err
			}
			if want != rev {
				return nil, store.ErrStale
			}
		}
		conds, err := fn(cur)
		if err != nil {
			return nil, err
		}
		cur.Name, cur.Etag, cur.UpdateTime = name, "", timestamppb.New(s.now())
		nrev, err := s.st.Commit(ctx, append([]store.Cond{{Key: deploymentKey(name), Rev: rev}}, conds...), store.Put(deploymentKey(name), cur))
		if store.IsStale(err) && etag == "" && attempt < 10 {
			continue
		}
		if err != nil {
			return nil, err
		}
		cur.Etag = store.Etag(nrev)
		s.kick()
		return fillDeployment(cur), nil
	}
}

// Delete removes the deployment; the leader cancels its replicas.
func (s *Service) Delete(ctx context.Context, name string) error {
	if _, _, err := s.get(ctx, name); err != nil {
		return err
	}
	if _, err := s.st.Commit(ctx, nil, store.Delete(deploymentKey(name))); err != nil {
		return fmt.Errorf("delete deployment %s: %w", name, err)
	}
	s.kick()
	return nil
}

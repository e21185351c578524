package gateway

import (
	"context"
	"slices"
	"strings"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	gatewayv1 "github.com/bmaas/bmaas/api/bmaas/gateway/v1"
	schedulerv1 "github.com/bmaas/bmaas/api/bmaas/scheduler/v1"
	"github.com/bmaas/bmaas/pkg/apierr"
	"github.com/bmaas/bmaas/pkg/store"
)

// updatableFields are the fields of a deployment that UpdateDeployment
// changes: its spec.
var updatableFields = []string{
	"model", "min_replicas", "max_replicas", "target_concurrency", "max_batch_size",
	"max_queue_delay_micros", "autoscaling", "resources", "canary_version", "canary_percent",
	"scale_to_zero_seconds", "runtime", "parameters", "routing",
	"payload_logging",
}

// ignoredFields are the key and the output only fields: a mask may name
// them (a REST PATCH of a whole deployment infers its mask from the body's
// keys) and they keep their stored values.
var ignoredFields = []string{"name", "state", "state_kind", "create_time", "status", "etag", "update_time"}

// updatePaths checks an update mask against the deployment's fields and
// returns the paths to apply. An absent or empty mask, or `*`, names every
// updatable field: the whole-deployment replace clients sent before masks.
func updatePaths(mask *fieldmaskpb.FieldMask) ([]string, error) {
	if len(mask.GetPaths()) == 0 || slices.Contains(mask.GetPaths(), "*") {
		return updatableFields, nil
	}
	var out []string
	resources := (&schedulerv1.Resources{}).ProtoReflect().Descriptor().Fields()
	for _, p := range mask.GetPaths() {
		head, sub, nested := strings.Cut(p, ".")
		switch {
		case slices.Contains(ignoredFields, head):
			continue
		case !slices.Contains(updatableFields, head):
			return nil, apierr.Invalid("update_mask", "%q is not a field of a deployment (updatable: %s)", p, strings.Join(updatableFields, ", "))
		case nested && (head != "resources" || resources.ByName(protoreflect.Name(sub)) == nil):
			return nil, apierr.Invalid("update_mask", "%q is not a field of a deployment", p)
		}
		out = append(out, p)
	}
	return out, nil
}

// applyPaths copies the named fields from src into dst: a field src does
// not set is cleared in dst.
func applyPaths(dst, src *gatewayv1.Deployment, paths []string) {
	for _, p := range paths {
		d, s := dst.ProtoReflect(), src.ProtoReflect()
		head, sub, nested := strings.Cut(p, ".")
		fd := d.Descriptor().Fields().ByName(protoreflect.Name(head))
		if nested {
			s = s.Get(fd).Message()
			d = d.Mutable(fd).Message()
			fd = d.Descriptor().Fields().ByName(protoreflect.Name(sub))
		}
		if s.Has(fd) {
			d.Set(fd, s.Get(fd))
		} else {
			d.Clear(fd)
		}
	}
}

// Update changes the fields of a deployment its mask names (all of its
// spec with an empty mask; status is the server's) and checks the result
// as Create does; an etag, when sent, must match.
func (s *Service) Update(ctx context.Context, d *gatewayv1.Deployment, mask *fieldmaskpb.FieldMask) (*gatewayv1.Deployment, error) {
	if d == nil {
		return nil, apierr.Invalid("deployment", "required")
	}
	paths, err := updatePaths(mask)
	if err != nil {
		return nil, err
	}
	d = proto.Clone(d).(*gatewayv1.Deployment)
	if d.Name == "" {
		if !slices.Contains(paths, "model") {
			return nil, apierr.Invalid("deployment.name", "required")
		}
		if d.Name, _, err = ParseModelRef(d.Model); err != nil {
			return nil, err
		}
	}
	return s.modifyCond(ctx, d.Name, d.Etag, func(cur *gatewayv1.Deployment) ([]store.Cond, error) {
		next := proto.Clone(cur).(*gatewayv1.Deployment)
		applyPaths(next, d, paths)
		if err := s.normalize(ctx, next); err != nil {
			return nil, err
		}
		var quota []store.Cond
		if mostReplicas(next) > mostReplicas(cur) {
			if quota, err = s.checkQuota(ctx, next); err != nil {
				return nil, err
			}
		}
		if slices.Contains(paths, "model") || slices.Contains(paths, "runtime") {
			if _, _, err := s.versionRuntime(ctx, next); err != nil {
				return nil, err
			}
		}
		proto.Reset(cur)
		proto.Merge(cur, next)
		return quota, nil
	})
}

package alerting

import (
	"context"
	"errors"
	"slices"
	"strings"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	evaluatorv1 "github.com/bmaas/bmaas/api/bmaas/evaluator/v1"
	"github.com/bmaas/bmaas/pkg/apierr"
	"github.com/bmaas/bmaas/pkg/store"
)

// updatableFields are a rule's fields an update may change; the others
// are its key, its deployment, and what the leader writes.
var updatableFields = []string{"series", "column", "comparison", "threshold", "for", "labels", "annotations", "action"}

// ignoredFields may be named (a REST PATCH of a whole rule infers its mask
// from the body's keys) and keep their stored values.
var ignoredFields = []string{"name", "deployment", "state", "state_time", "value", "create_time", "alert", "last_action_time"}

// Update changes the fields of rule r.Name that mask names (all
// updatable ones when it is empty or `*`), validates the result as Create
// does, and stores it if the rule did not change meanwhile (else it reads
// it again and retries).
func (e *Engine) Update(ctx context.Context, r *evaluatorv1.AlertRule, mask *fieldmaskpb.FieldMask) (*evaluatorv1.AlertRule, error) {
	if r.GetName() == "" {
		return nil, apierr.Invalid("rule.name", "required")
	}
	paths := updatableFields
	if len(mask.GetPaths()) > 0 && !slices.Contains(mask.GetPaths(), "*") {
		paths = nil
		for _, p := range mask.GetPaths() {
			switch {
			case slices.Contains(ignoredFields, p):
			case !slices.Contains(updatableFields, p):
				return nil, apierr.Invalid("update_mask", "%q is not a field of an alert rule (updatable: %s)", p, strings.Join(updatableFields, ", "))
			default:
				paths = append(paths, p)
			}
		}
	}
	for {
		cur := &evaluatorv1.AlertRule{}
		rev, err := e.st.Get(ctx, RuleKey(r.GetName()), cur)
		if err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return nil, apierr.NotFound("alert rule", r.GetName())
			}
			return nil, err
		}
		next := proto.Clone(cur).(*evaluatorv1.AlertRule)
		dst, src := next.ProtoReflect(), r.ProtoReflect()
		for _, p := range paths {
			fd := dst.Descriptor().Fields().ByName(protoreflect.Name(p))
			if src.Has(fd) {
				dst.Set(fd, src.Get(fd))
			} else {
				dst.Clear(fd)
			}
		}
		if err := validate(next); err != nil {
			return nil, err
		}
		if e.check != nil && next.GetDeployment() != "" && next.GetAction() != nil && cur.GetAction() == nil {
			if err := e.check(ctx, next); err != nil {
				return nil, err
			}
		}
		_, err = e.st.Commit(ctx, []store.Cond{{Key: RuleKey(r.GetName()), Rev: rev}}, store.Put(RuleKey(r.GetName()), next))
		if store.IsStale(err) {
			continue // the leader wrote the rule's state meanwhile
		}
		if err != nil {
			return nil, err
		}
		return next, nil
	}
}

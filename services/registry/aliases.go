package registry

import (
	"context"

	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
	"github.com/bmaas/bmaas/pkg/apierr"
	"github.com/bmaas/bmaas/pkg/store"
)

// SetAlias points alias at the version ref names, atomically. With
// expected != 0 the alias must currently point at expected (compare and
// swap), else the call fails with ABORTED.
func (r *Registry) SetAlias(ctx context.Context, model, alias, ref string, expected int64) (*registryv1.Model, int64, error) {
	if err := checkName("model", model); err != nil {
		return nil, 0, err
	}
	if err := checkAlias("alias", alias); err != nil {
		return nil, 0, err
	}
	if expected < 0 {
		return nil, 0, apierr.Invalid("expected_version", "must not be negative")
	}
	var prev int64
	_, after, err := r.modifyModel(ctx, model, func(m *registryv1.Model) ([]store.Op, error) {
		// A concurrent DeleteVersion also rewrites the model, so this
		// commit fails and re-resolves if the version went away.
		v, _, err := r.resolve(ctx, model, ref)
		if err != nil {
			return nil, err
		}
		if v.Status != registryv1.VersionStatus_VERSION_STATUS_READY {
			return nil, apierr.Precondition("version %d of %q is %s; only READY versions take aliases", v.Version, model, v.Status)
		}
		prev = m.Aliases[alias]
		if expected != 0 && prev != expected {
			return nil, apierr.Conflict("alias %q points at version %d, not %d", alias, prev, expected)
		}
		if m.Aliases == nil {
			m.Aliases = map[string]int64{}
		}
		m.Aliases[alias] = v.Version
		return nil, nil
	})
	if err != nil {
		return nil, 0, err
	}
	r.publish(ctx, "model", model, "alias.moved", after)
	return after, prev, nil
}

// GetAlias returns the version an alias points at.
func (r *Registry) GetAlias(ctx context.Context, model, alias string) (*registryv1.ModelVersion, error) {
	if err := checkAlias("alias", alias); err != nil {
		return nil, err
	}
	return r.GetVersion(ctx, model, alias)
}

// DeleteAlias removes an alias.
func (r *Registry) DeleteAlias(ctx context.Context, model, alias string) (*registryv1.Model, error) {
	if err := checkName("model", model); err != nil {
		return nil, err
	}
	if err := checkAlias("alias", alias); err != nil {
		return nil, err
	}
	_, after, err := r.modifyModel(ctx, model, func(m *registryv1.Model) ([]store.Op, error) {
		if _, ok := m.Aliases[alias]; !ok {
			return nil, apierr.NotFound("alias", model+"@"+alias)
		}
		delete(m.Aliases, alias)
		return nil, nil
	})
	if err != nil {
		return nil, err
	}
	r.publish(ctx, "model", model, "alias.deleted", after)
	return after, nil
}

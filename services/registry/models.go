package registry

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
	"github.com/bmaas/bmaas/pkg/apierr"
	"github.com/bmaas/bmaas/pkg/iam"
	"github.com/bmaas/bmaas/pkg/store"
)

// maxRetries bounds internal retries of read-modify-write cycles that lost a
// race against an unrelated change (a version upload bumping the counter).
const maxRetries = 16

// CreateModel creates a model.
func (r *Registry) CreateModel(ctx context.Context, m *registryv1.Model) (*registryv1.Model, error) {
	if m == nil {
		return nil, apierr.Invalid("model", "is required")
	}
	if err := checkName("model.name", m.Name); err != nil {
		return nil, err
	}
	if err := iam.ProjectExists(ctx, r.st, "model.name", iam.ProjectOfName(m.Name)); err != nil {
		return nil, err
	}
	if err := checkLabels("model.labels", m.Labels); err != nil {
		return nil, err
	}
	if len(m.Description) > 4096 {
		return nil, apierr.Invalid("model.description", "longer than 4096 bytes")
	}
	if len(m.Aliases) > 0 {
		return nil, apierr.Invalid("model.aliases", "set aliases with SetAlias once versions exist")
	}
	now := r.ts()
	nm := &registryv1.Model{Name: m.Name, Description: m.Description, TaskType: m.TaskType, Labels: m.Labels,
		CreateTime: now, UpdateTime: now}
	rev, err := r.commit(ctx, []store.Cond{{Key: modelKey(m.Name)}}, store.Put(modelKey(m.Name), nm))
	if store.IsStale(err) {
		return nil, apierr.AlreadyExists("model", m.Name)
	}
	if err != nil {
		return nil, fmt.Errorf("create model %s: %w", m.Name, err)
	}
	nm.Etag = store.Etag(rev)
	r.publish(ctx, "model", nm.Name, "created", nm)
	return nm, nil
}

// getModel reads a model and its revision from the cache, after the cache
// has seen this process's own writes.
func (r *Registry) getModel(ctx context.Context, name string) (*registryv1.Model, int64, error) {
	m, rev, err := r.models.Get(ctx, modelKey(name))
	return r.modelResult(name, m, rev, err)
}

// readModel reads a model for a read-modify-write cycle: from the cache as
// it is, or from etcd when fresh (after a lost race, when the cache may not
// have seen the winner yet). The commit checks the revision either way.
func (r *Registry) readModel(ctx context.Context, name string, fresh bool) (*registryv1.Model, int64, error) {
	if fresh {
		m := &registryv1.Model{}
		rev, err := r.st.Get(ctx, modelKey(name), m)
		return r.modelResult(name, m, rev, err)
	}
	m, rev, err := r.models.Peek(ctx, modelKey(name))
	return r.modelResult(name, m, rev, err)
}

func (r *Registry) modelResult(name string, m *registryv1.Model, rev int64, err error) (*registryv1.Model, int64, error) {
	if errors.Is(err, store.ErrNotFound) {
		return nil, 0, apierr.NotFound("model", name)
	}
	if err != nil {
		return nil, 0, err
	}
	m.Etag = store.Etag(rev)
	return m, rev, nil
}

// GetModel returns a model.
func (r *Registry) GetModel(ctx context.Context, name string) (*registryv1.Model, error) {
	if err := checkName("name", name); err != nil {
		return nil, err
	}
	m, _, err := r.getModel(ctx, name)
	return m, err
}

// ListModels pages through the models of the call's project, optionally
// filtered by labels.
func (r *Registry) ListModels(ctx context.Context, req *registryv1.ListModelsRequest) (*registryv1.ListModelsResponse, error) {
	size, err := store.PageSize("page_size", req.GetPageSize())
	if err != nil {
		return nil, err
	}
	sel, err := parseSelector("label_selector", req.GetLabelSelector())
	if err != nil {
		return nil, err
	}
	project := iam.ProjectFrom(ctx)
	keep := func(m *registryv1.Model) bool {
		return iam.InProject(m.Name, project) && (sel == nil || matches(m.Labels, sel))
	}
	items, next, err := store.List(ctx, r.st, iam.ProjectPrefix(modelsPrefix(), project), size, req.GetPageToken(),
		func() *registryv1.Model { return &registryv1.Model{} }, keep)
	if err != nil {
		return nil, err
	}
	out := &registryv1.ListModelsResponse{NextPageToken: next, Models: make([]*registryv1.Model, len(items))}
	for i, it := range items {
		it.Msg.Etag = store.Etag(it.Rev)
		out.Models[i] = it.Msg
	}
	return out, nil
}

// modelUpdatable are the fields UpdateModel changes; modelIgnored the key
// and the output only fields, which a mask may name to no effect.
var (
	modelUpdatable = []string{"description", "task_type", "labels"}
	modelIgnored   = []string{"name", "aliases", "latest_version", "create_time", "update_time", "etag",
		"version_count", "last_assigned_version"}
)

// modelUpdatePaths checks an UpdateModel mask (AIP-134): an empty mask or
// `*` names the three updatable fields; the key and the output only fields
// are ignored (a REST PATCH of a whole model infers its mask from the
// body's keys); any other path is an error naming update_mask.
func modelUpdatePaths(mask *fieldmaskpb.FieldMask) ([]string, error) {
	if len(mask.GetPaths()) == 0 || slices.Contains(mask.GetPaths(), "*") {
		return modelUpdatable, nil
	}
	var out []string
	for _, p := range mask.GetPaths() {
		head, _, _ := strings.Cut(p, ".")
		switch {
		case slices.Contains(modelIgnored, head):
		case slices.Contains(modelUpdatable, p):
			out = append(out, p)
		default:
			return nil, apierr.Invalid("update_mask", "cannot update %q (only description, task_type, labels)", p)
		}
	}
	return out, nil
}

// UpdateModel changes a model's description, task type or labels. With an
// etag the update applies only to that revision (ABORTED otherwise);
// without one it is re-applied to the newest revision.
func (r *Registry) UpdateModel(ctx context.Context, m *registryv1.Model, mask *fieldmaskpb.FieldMask) (*registryv1.Model, error) {
	if m == nil {
		return nil, apierr.Invalid("model", "is required")
	}
	if err := checkName("model.name", m.Name); err != nil {
		return nil, err
	}
	want, err := store.ParseEtag("model.etag", m.Etag)
	if err != nil {
		return nil, err
	}
	paths, err := modelUpdatePaths(mask)
	if err != nil {
		return nil, err
	}
	if err := checkLabels("model.labels", m.Labels); err != nil {
		return nil, err
	}
	for attempt := range maxRetries {
		cur, rev, err := r.readModel(ctx, m.Name, attempt > 0)
		if err != nil {
			return nil, err
		}
		if want != 0 && rev < want && attempt == 0 {
			continue // the cache lags the etag the client holds: read etcd
		}
		if want != 0 && rev != want {
			return nil, apierr.Conflict("model %q changed since etag %s (now %s)", m.Name, m.Etag, cur.Etag)
		}
		for _, p := range paths {
			switch p {
			case "description":
				cur.Description = m.Description
			case "task_type":
				cur.TaskType = m.TaskType
			case "labels":
				cur.Labels = m.Labels
			}
		}
		cur.UpdateTime = r.ts()
		cur.Etag = ""
		nrev, err := r.commit(ctx, []store.Cond{{Key: modelKey(m.Name), Rev: rev}}, store.Put(modelKey(m.Name), cur))
		if store.IsStale(err) {
			if want != 0 {
				return nil, apierr.Conflict("model %q changed since etag %s", m.Name, m.Etag)
			}
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("update model %s: %w", m.Name, err)
		}
		cur.Etag = store.Etag(nrev)
		r.publish(ctx, "model", cur.Name, "updated", cur)
		return cur, nil
	}
	return nil, apierr.Conflict("model %q is changing too fast; retry", m.Name)
}

// DeleteModel deletes a model; with force its versions and aliases go too.
func (r *Registry) DeleteModel(ctx context.Context, name string, force bool) error {
	if err := checkName("name", name); err != nil {
		return err
	}
	m, rev, err := r.getModel(ctx, name)
	if err != nil {
		return err
	}
	if !force {
		resp, err := r.st.Client().Get(ctx, versionsPrefix(name), clientv3.WithPrefix(), clientv3.WithCountOnly())
		if err != nil {
			return fmt.Errorf("count versions of %s: %w", name, err)
		}
		if resp.Count > 0 {
			return apierr.Precondition("model %q has %d versions; delete them first or use force", name, resp.Count)
		}
	}
	_, err = r.commit(ctx, []store.Cond{{Key: modelKey(name), Rev: rev}},
		store.Delete(modelKey(name)), store.DeletePrefix(versionsPrefix(name)))
	if store.IsStale(err) {
		return apierr.Conflict("model %q changed while deleting; retry", name)
	}
	if err != nil {
		return fmt.Errorf("delete model %s: %w", name, err)
	}
	r.publish(ctx, "model", name, "deleted", m)
	r.kickGC()
	return nil
}

// modifyModel applies fn to the newest revision of a model and commits it
// together with extra ops, retrying when an unrelated change raced it.
// fn may return a sentinel error to stop.
func (r *Registry) modifyModel(ctx context.Context, name string, fn func(*registryv1.Model) ([]store.Op, error)) (*registryv1.Model, *registryv1.Model, error) {
	return r.modifyModelCond(ctx, name, func(m *registryv1.Model) ([]store.Op, []store.Cond, error) {
		ops, err := fn(m)
		return ops, nil, err
	})
}

// modifyModelCond is modifyModel whose fn also gives conditions for the
// commit (a quota's); a commit that fails them is tried again.
func (r *Registry) modifyModelCond(ctx context.Context, name string, fn func(*registryv1.Model) ([]store.Op, []store.Cond, error)) (*registryv1.Model, *registryv1.Model, error) {
	for attempt := range maxRetries {
		cur, rev, err := r.readModel(ctx, name, attempt > 0)
		if err != nil {
			return nil, nil, err
		}
		before := proto.Clone(cur).(*registryv1.Model)
		extra, conds, err := fn(cur)
		if err != nil {
			return nil, nil, err
		}
		cur.UpdateTime = r.ts()
		cur.Etag = ""
		ops := append([]store.Op{store.Put(modelKey(name), cur)}, extra...)
		nrev, err := r.commit(ctx, append([]store.Cond{{Key: modelKey(name), Rev: rev}}, conds...), ops...)
		if store.IsStale(err) {
			continue
		}
		if err != nil {
			return nil, nil, fmt.Errorf("update model %s: %w", name, err)
		}
		cur.Etag = store.Etag(nrev)
		return before, cur, nil
	}
	return nil, nil, apierr.Conflict("model %q is changing too fast; retry", name)
}

package registry

import (
	"context"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"

	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
	"github.com/bmaas/bmaas/pkg/apierr"
	"github.com/bmaas/bmaas/pkg/store"
)

// versionEdit changes a stored version.
type versionEdit func(v *registryv1.ModelVersion)

// versionUpdate turns an UpdateModelVersionRequest into the edit it asks
// for. With update_mask, `description`, `metrics` and `labels` replace the
// field and `metrics.<key>` / `labels.<key>` set or delete one entry. An
// empty mask keeps the semantics from before masks: a non-empty
// description replaces the stored one and metrics and labels merge.
func versionUpdate(req *registryv1.UpdateModelVersionRequest) (versionEdit, error) {
	for k, v := range req.GetMetrics() {
		if k == "" || math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, apierr.Invalid("metrics["+k+"]", "needs a name and a finite value")
		}
	}
	if err := checkLabels("labels", req.GetLabels()); err != nil {
		return nil, err
	}
	paths := req.GetUpdateMask().GetPaths()
	if len(paths) == 0 {
		return mergeVersion(req), nil
	}
	if slices.Contains(paths, "*") {
		paths = []string{"description", "metrics", "labels"}
	}
	var edits []versionEdit
	for _, p := range paths {
		field, key, entry := strings.Cut(p, ".")
		switch {
		case p == "description":
			edits = append(edits, func(v *registryv1.ModelVersion) { v.Description = req.GetDescription() })
		case p == "metrics":
			edits = append(edits, func(v *registryv1.ModelVersion) { v.Metrics = maps.Clone(req.GetMetrics()) })
		case p == "labels":
			edits = append(edits, func(v *registryv1.ModelVersion) { v.Labels = maps.Clone(req.GetLabels()) })
		case entry && key != "" && field == "metrics":
			edits = append(edits, func(v *registryv1.ModelVersion) { v.Metrics = setEntry(v.Metrics, req.GetMetrics(), key) })
		case entry && key != "" && field == "labels":
			edits = append(edits, func(v *registryv1.ModelVersion) { v.Labels = setEntry(v.Labels, req.GetLabels(), key) })
		default:
			return nil, apierr.Invalid("update_mask", "%q is not an updatable field of a model version (description, metrics, labels, metrics.<key>, labels.<key>)", p)
		}
	}
	return func(v *registryv1.ModelVersion) {
		for _, e := range edits {
			e(v)
		}
	}, nil
}

// mergeVersion is the edit of an update without a mask.
func mergeVersion(req *registryv1.UpdateModelVersionRequest) versionEdit {
	return func(v *registryv1.ModelVersion) {
		if req.GetDescription() != "" {
			v.Description = req.GetDescription()
		}
		if len(req.GetMetrics()) > 0 && v.Metrics == nil {
			v.Metrics = map[string]float64{}
		}
		maps.Copy(v.Metrics, req.GetMetrics())
		if len(req.GetLabels()) > 0 && v.Labels == nil {
			v.Labels = map[string]string{}
		}
		maps.Copy(v.Labels, req.GetLabels())
	}
}

// setEntry sets key in dst to its value in src, or deletes it when src
// has no such key.
func setEntry[V any](dst, src map[string]V, key string) map[string]V {
	x, ok := src[key]
	if !ok {
		delete(dst, key)
		return dst
	}
	if dst == nil {
		dst = map[string]V{}
	}
	dst[key] = x
	return dst
}

// UpdateVersion changes a version's description, metrics and labels as
// the request's update_mask says. With an etag it applies only to that
// revision.
func (r *Registry) UpdateVersion(ctx context.Context, req *registryv1.UpdateModelVersionRequest) (*registryv1.ModelVersion, error) {
	want, err := store.ParseEtag("etag", req.GetEtag())
	if err != nil {
		return nil, err
	}
	edit, err := versionUpdate(req)
	if err != nil {
		return nil, err
	}
	for range maxRetries {
		v, rev, err := r.resolve(ctx, req.GetModel(), req.GetVersion())
		if err != nil {
			return nil, err
		}
		if want != 0 && want != rev {
			return nil, apierr.Conflict("version %s@%d changed since etag %s", v.Model, v.Version, req.GetEtag())
		}
		edit(v)
		v.UpdateTime = r.ts()
		aliases := v.Aliases
		v.Aliases, v.Etag = nil, ""
		key := versionKey(v.Model, v.Version)
		nrev, err := r.commit(ctx, []store.Cond{{Key: key, Rev: rev}}, store.Put(key, v))
		if store.IsStale(err) {
			if want != 0 {
				return nil, apierr.Conflict("version %s@%d changed since etag %s", v.Model, v.Version, req.GetEtag())
			}
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("update version: %w", err)
		}
		v.Aliases, v.Etag = aliases, store.Etag(nrev)
		r.publish(ctx, "model", v.Model, "version.updated", v)
		return v, nil
	}
	return nil, apierr.Conflict("version is changing too fast; retry")
}

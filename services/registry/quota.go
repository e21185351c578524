package registry

import (
	"context"

	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
	"github.com/bmaas/bmaas/pkg/apierr"
	"github.com/bmaas/bmaas/pkg/iam"
	"github.com/bmaas/bmaas/pkg/store"
)

// checkStorage refuses adding bytes of a model version's artifact or a
// dataset version when the project would hold more than its quota's
// storage_bytes: the sizes of its versions' artifacts and datasets
// (content shared by two versions counts twice, as each may be deleted
// alone). name is the model's or dataset's, whose project pays. Two
// uploads at the same moment may pass together.
func (r *Registry) checkStorage(ctx context.Context, name string, adding int64) error {
	project := iam.ProjectOfName(name)
	q, err := iam.ProjectQuota(ctx, r.st, project)
	limit := q.GetStorageBytes()
	if err != nil || limit <= 0 {
		return err
	}
	var used int64
	if !r.versions.Each(func(_ string, v *registryv1.ModelVersion) {
		if iam.InProject(v.GetModel(), project) {
			used += v.GetSizeBytes()
		}
	}) {
		items, _, err := store.List(ctx, r.st, store.Key("versions")+"/", store.MaxPageSize*100, "",
			func() *registryv1.ModelVersion { return &registryv1.ModelVersion{} },
			func(v *registryv1.ModelVersion) bool { return iam.InProject(v.GetModel(), project) })
		if err != nil {
			return err
		}
		for _, it := range items {
			used += it.Msg.GetSizeBytes()
		}
	}
	items, _, err := store.List(ctx, r.st, store.Key("dataset-versions")+"/", store.MaxPageSize*100, "",
		func() *registryv1.DatasetVersion { return &registryv1.DatasetVersion{} },
		func(v *registryv1.DatasetVersion) bool { return iam.InProject(v.GetDataset(), project) })
	if err != nil {
		return err
	}
	for _, it := range items {
		used += it.Msg.GetSizeBytes()
	}
	if used+adding > limit {
		return apierr.Exhausted("over quota: project %s stores %d of its %d bytes; %d more do not fit (delete versions, or raise quota.storage_bytes)",
			project, used, limit, adding)
	}
	return nil
}

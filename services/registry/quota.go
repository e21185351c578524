package registry

import (
	"context"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/protobuf/proto"

	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
	"github.com/bmaas/bmaas/pkg/apierr"
	"github.com/bmaas/bmaas/pkg/iam"
	"github.com/bmaas/bmaas/pkg/store"
)

// checkStorage refuses adding bytes of a model version's artifact or a
// dataset version when the project would hold more than its quota's
// storage_bytes: the sizes of its versions' artifacts and datasets
// (content shared by two versions counts twice, as each may be deleted
// alone). name is the model's or dataset's, whose project pays. It
// reads the project's versions from etcd and returns the conditions the
// write must commit with: that none of them changed since (nil when the
// project has no storage quota), so two uploads at the same moment cannot
// both pass; the one whose commit fails checks again.
func (r *Registry) checkStorage(ctx context.Context, name string, adding int64) ([]store.Cond, error) {
	project := iam.ProjectOfName(name)
	q, err := iam.ProjectQuota(ctx, r.st, project)
	limit := q.GetStorageBytes()
	if err != nil || limit <= 0 {
		return nil, err
	}
	var used int64
	var conds []store.Cond
	for _, layout := range []struct {
		prefix string
		size   func([]byte) (string, int64, bool)
	}{
		{store.Key("versions") + "/", func(b []byte) (string, int64, bool) {
			v := &registryv1.ModelVersion{}
			err := proto.Unmarshal(b, v)
			return v.GetModel(), v.GetSizeBytes(), err == nil
		}},
		{store.Key("dataset-versions") + "/", func(b []byte) (string, int64, bool) {
			v := &registryv1.DatasetVersion{}
			err := proto.Unmarshal(b, v)
			return v.GetDataset(), v.GetSizeBytes(), err == nil
		}},
	} {
		prefix := iam.ProjectPrefix(layout.prefix, project)
		resp, err := r.st.Client().Get(ctx, prefix, clientv3.WithPrefix())
		if err != nil {
			return nil, err
		}
		for _, kv := range resp.Kvs {
			if owner, size, ok := layout.size(kv.Value); ok && iam.InProject(owner, project) {
				used += size
			}
		}
		conds = append(conds, store.Cond{Key: prefix, Rev: resp.Header.Revision, Prefix: true})
	}
	if used+adding > limit {
		return nil, apierr.Exhausted("over quota: project %s stores %d of its %d bytes; %d more do not fit (delete versions, or raise quota.storage_bytes)",
			project, used, limit, adding)
	}
	return conds, nil
}

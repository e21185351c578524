package registry

import (
	"context"
	"fmt"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/protobuf/proto"

	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
	"github.com/bmaas/bmaas/pkg/blob"
	"github.com/bmaas/bmaas/pkg/store"
)

// CollectGarbage deletes blobs that no version or dataset version
// references and that are older than the grace period (so an upload whose
// blob is stored but whose version is not yet committed keeps its blob).
func (r *Registry) CollectGarbage(ctx context.Context) (int, error) {
	refs := map[string]bool{}
	for _, p := range []struct {
		prefix string
		msg    func() digested
	}{
		{store.Key("versions") + "/", func() digested { return &registryv1.ModelVersion{} }},
		{store.Key("dataset-versions") + "/", func() digested { return &registryv1.DatasetVersion{} }},
		{store.Key("checkpoints") + "/", func() digested { return &registryv1.Checkpoint{} }},
		{store.Key("bundles") + "/", func() digested { return &registryv1.Bundle{} }},
	} {
		if err := r.collectRefs(ctx, p.prefix, p.msg, refs); err != nil {
			return 0, err
		}
	}
	cutoff := r.now().Add(-r.cfg.GCGrace)
	var doomed []string
	err := r.blobs.Walk(ctx, func(info blob.Info) error {
		if !refs[info.Digest] && info.ModTime.Before(cutoff) {
			doomed = append(doomed, info.Digest)
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("walk blobs: %w", err)
	}
	for _, d := range doomed {
		if err := r.blobs.Delete(ctx, d); err != nil {
			return 0, fmt.Errorf("delete blob %s: %w", d, err)
		}
		r.gcDeleted.Inc()
	}
	if len(doomed) > 0 {
		r.log.Info("collected unreferenced blobs", "count", len(doomed))
	}
	return len(doomed), nil
}

// digested is what versions and dataset versions share.
type digested interface {
	proto.Message
	GetSha256() string
}

func (r *Registry) collectRefs(ctx context.Context, prefix string, newMsg func() digested, refs map[string]bool) error {
	resp, err := r.st.Client().Get(ctx, prefix, clientv3.WithPrefix())
	if err != nil {
		return fmt.Errorf("scan %s: %w", prefix, err)
	}
	for _, kv := range resp.Kvs {
		m := newMsg()
		if err := proto.Unmarshal(kv.Value, m); err != nil {
			return fmt.Errorf("decode %s: %w", kv.Key, err)
		}
		refs[m.GetSha256()] = true
	}
	return nil
}

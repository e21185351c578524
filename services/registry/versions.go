package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/protobuf/proto"

	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
	"github.com/bmaas/bmaas/pkg/apierr"
	"github.com/bmaas/bmaas/pkg/blob"
	"github.com/bmaas/bmaas/pkg/store"
)

func checkSpec(spec *registryv1.ModelVersionSpec) error {
	if spec == nil {
		return nil
	}
	if _, ok := registryv1.ModelFormat_name[int32(spec.Format)]; !ok {
		return apierr.Invalid("spec.format", "unknown format %d", spec.Format)
	}
	for k, v := range spec.Metrics {
		if k == "" {
			return apierr.Invalid("spec.metrics", "empty metric name")
		}
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return apierr.Invalid("spec.metrics["+k+"]", "must be finite, got %v", v)
		}
	}
	if len(spec.Description) > 4096 {
		return apierr.Invalid("spec.description", "longer than 4096 bytes")
	}
	return checkLabels("spec.labels", spec.Labels)
}

// stage streams body into a new blob and verifies it: the expected digest
// comes from the header, or from late() once body is drained (a trailer).
// check, when set, runs after the body is drained and before the commit;
// its error rejects the upload.
func (r *Registry) stage(ctx context.Context, kind string, limit int64, body io.Reader, expected string, late func() string, check func(error) error) (blob.Info, error) {
	w, err := r.blobs.NewWriter(ctx, limit)
	if err != nil {
		return blob.Info{}, fmt.Errorf("stage %s: %w", kind, err)
	}
	defer func() { _ = w.Abort() }()
	buf := make([]byte, 256<<10)
	_, err = io.CopyBuffer(w, body, buf)
	r.uploadBytes.WithLabelValues(kind).Add(float64(w.Size()))
	if check != nil {
		if cerr := check(err); cerr != nil {
			return blob.Info{}, cerr
		}
	}
	switch {
	case errors.Is(err, blob.ErrTooLarge):
		return blob.Info{}, apierr.Exhausted("%s larger than the limit of %d bytes", kind, limit)
	case err != nil:
		return blob.Info{}, err
	case w.Size() == 0:
		return blob.Info{}, apierr.Invalid("chunk", "empty upload: the %s has no bytes", kind)
	}
	if expected == "" && late != nil {
		// Uploads must carry the client's digest; imports (late == nil)
		// trust the digest computed here.
		if expected = late(); expected == "" {
			return blob.Info{}, apierr.Invalid("sha256", "required in the header or the trailer")
		}
	}
	if err := checkSHA("sha256", expected); err != nil {
		return blob.Info{}, err
	}
	info, err := w.Commit(ctx, expected)
	if errors.Is(err, blob.ErrDigestMismatch) {
		return blob.Info{}, apierr.Invalid("sha256", "the %s hashes to %s, not %s", kind, w.Digest(), expected)
	}
	if err != nil {
		return blob.Info{}, fmt.Errorf("commit %s: %w", kind, err)
	}
	return info, nil
}

// CreateVersion stores an uploaded artifact as a new READY version. The
// version is written to etcd only after its blob is durable, so a crash
// mid-upload leaves no version behind (only a staged file, cleaned up at
// start) and no version ever references a missing blob.
func (r *Registry) CreateVersion(ctx context.Context, hdr *registryv1.CreateModelVersionHeader, body io.Reader, late func() string) (*registryv1.ModelVersion, error) {
	if hdr == nil {
		return nil, apierr.Invalid("header", "the first message must be the header")
	}
	if err := checkName("header.model", hdr.Model); err != nil {
		return nil, err
	}
	if err := checkSpec(hdr.Spec); err != nil {
		return nil, err
	}
	if err := checkSHA("header.sha256", hdr.Sha256); err != nil {
		return nil, err
	}
	if hdr.SizeBytes > r.cfg.MaxArtifactBytes {
		return nil, apierr.Exhausted("artifact of %d bytes is larger than the limit of %d bytes", hdr.SizeBytes, r.cfg.MaxArtifactBytes)
	}
	if hdr.SizeBytes < 0 {
		return nil, apierr.Invalid("header.size_bytes", "must not be negative")
	}
	if _, _, err := r.getModel(ctx, hdr.Model); err != nil {
		return nil, err
	}
	info, err := r.stage(ctx, "artifact", r.cfg.MaxArtifactBytes, body, hdr.Sha256, late, nil)
	if err != nil {
		return nil, err
	}
	if hdr.SizeBytes > 0 && info.Size != hdr.SizeBytes {
		return nil, apierr.Invalid("header.size_bytes", "announced %d bytes, received %d", hdr.SizeBytes, info.Size)
	}
	return r.commitVersion(ctx, hdr.Model, hdr.Spec, info)
}

func (r *Registry) commitVersion(ctx context.Context, model string, spec *registryv1.ModelVersionSpec, info blob.Info) (*registryv1.ModelVersion, error) {
	if spec == nil {
		spec = &registryv1.ModelVersionSpec{}
	}
	now := r.ts()
	v := &registryv1.ModelVersion{
		Model: model, Status: registryv1.VersionStatus_VERSION_STATUS_READY, Format: spec.Format,
		Description: spec.Description, Sha256: info.Digest, SizeBytes: info.Size, Signature: spec.Signature,
		Metrics: spec.Metrics, Hyperparameters: spec.Hyperparameters, Lineage: spec.Lineage,
		TrainingStats: spec.TrainingStats, Labels: spec.Labels, Filename: spec.Filename,
		CreateTime: now, UpdateTime: now,
	}
	if v.Format == registryv1.ModelFormat_MODEL_FORMAT_UNSPECIFIED {
		v.Format = registryv1.ModelFormat_MODEL_FORMAT_OTHER
	}
	_, _, err := r.modifyModelCond(ctx, model, func(m *registryv1.Model) ([]store.Op, []store.Cond, error) {
		quota, err := r.checkStorage(ctx, model, info.Size)
		if err != nil {
			return nil, nil, err
		}
		n, err := r.assignVersion(ctx, m)
		if err != nil {
			return nil, nil, err
		}
		v.Version = n
		return []store.Op{store.Put(versionKey(model, v.Version), v)}, quota, nil
	})
	if err != nil {
		return nil, err
	}
	r.publish(ctx, "model", model, "version.ready", v)
	return v, nil
}

// resolve finds the version a reference names, with the model's aliases.
func (r *Registry) resolve(ctx context.Context, model, refStr string) (*registryv1.ModelVersion, int64, error) {
	if err := checkName("model", model); err != nil {
		return nil, 0, err
	}
	rf, err := parseRef("version", refStr)
	if err != nil {
		return nil, 0, err
	}
	m, _, err := r.getModel(ctx, model)
	if err != nil {
		return nil, 0, err
	}
	num := rf.num
	switch {
	case rf.alias == refLatest:
		return r.latestReady(ctx, m)
	case rf.alias != "":
		n, ok := m.Aliases[rf.alias]
		if !ok {
			return nil, 0, apierr.NotFound("alias", model+"@"+rf.alias)
		}
		num = n
	}
	v, rev, err := r.versions.Get(ctx, versionKey(model, num))
	if errors.Is(err, store.ErrNotFound) {
		return nil, 0, apierr.NotFound("version", model+"@"+strconv.FormatInt(num, 10))
	}
	if err != nil {
		return nil, 0, err
	}
	decorate(v, m, rev)
	return v, rev, nil
}

func decorate(v *registryv1.ModelVersion, m *registryv1.Model, rev int64) {
	v.Etag = store.Etag(rev)
	v.Aliases = v.Aliases[:0]
	for a, n := range m.Aliases {
		if n == v.Version {
			v.Aliases = append(v.Aliases, a)
		}
	}
}

func (r *Registry) latestReady(ctx context.Context, m *registryv1.Model) (*registryv1.ModelVersion, int64, error) {
	prefix := versionsPrefix(m.Name)
	resp, err := r.st.Client().Get(ctx, prefix, clientv3.WithPrefix(),
		clientv3.WithSort(clientv3.SortByKey, clientv3.SortDescend), clientv3.WithLimit(64))
	if err != nil {
		return nil, 0, fmt.Errorf("latest version of %s: %w", m.Name, err)
	}
	for _, kv := range resp.Kvs {
		v := &registryv1.ModelVersion{}
		if err := proto.Unmarshal(kv.Value, v); err != nil {
			return nil, 0, fmt.Errorf("decode %s: %w", kv.Key, err)
		}
		if v.Status == registryv1.VersionStatus_VERSION_STATUS_READY {
			decorate(v, m, kv.ModRevision)
			return v, kv.ModRevision, nil
		}
	}
	return nil, 0, apierr.NotFound("version", m.Name+"@latest (no READY version)")
}

// GetVersion returns the version a reference names.
func (r *Registry) GetVersion(ctx context.Context, model, ref string) (*registryv1.ModelVersion, error) {
	v, _, err := r.resolve(ctx, model, ref)
	return v, err
}

// ListVersions pages through a model's versions, oldest first.
func (r *Registry) ListVersions(ctx context.Context, req *registryv1.ListModelVersionsRequest) (*registryv1.ListModelVersionsResponse, error) {
	if err := checkName("model", req.GetModel()); err != nil {
		return nil, err
	}
	size, err := store.PageSize("page_size", req.GetPageSize())
	if err != nil {
		return nil, err
	}
	m, _, err := r.getModel(ctx, req.GetModel())
	if err != nil {
		return nil, err
	}
	items, next, err := store.List(ctx, r.st, versionsPrefix(m.Name), size, req.GetPageToken(),
		func() *registryv1.ModelVersion { return &registryv1.ModelVersion{} }, nil)
	if err != nil {
		return nil, err
	}
	out := &registryv1.ListModelVersionsResponse{NextPageToken: next, Versions: make([]*registryv1.ModelVersion, len(items))}
	for i, it := range items {
		decorate(it.Msg, m, it.Rev)
		if req.GetView() == registryv1.VersionView_VERSION_VIEW_BASIC {
			it.Msg.Signature, it.Msg.TrainingStats = nil, nil
		}
		out.Versions[i] = it.Msg
	}
	return out, nil
}

// DeleteVersion deletes a version that no alias points at.
func (r *Registry) DeleteVersion(ctx context.Context, model, ref string) error {
	v, _, err := r.resolve(ctx, model, ref)
	if err != nil {
		return err
	}
	_, _, err = r.modifyModel(ctx, model, func(m *registryv1.Model) ([]store.Op, error) {
		for a, n := range m.Aliases {
			if n == v.Version {
				return nil, apierr.Precondition("version %d of %q is aliased as %q; move or unset the alias first", v.Version, model, a)
			}
		}
		if err := r.forgetVersion(ctx, m, v.Version); err != nil {
			return nil, err
		}
		return []store.Op{store.Delete(versionKey(model, v.Version))}, nil
	})
	if err != nil {
		return err
	}
	r.publish(ctx, "model", model, "version.deleted", v)
	r.kickGC()
	return nil
}

// OpenVersion resolves a reference to a READY version and opens its blob.
func (r *Registry) OpenVersion(ctx context.Context, model, ref string) (*registryv1.ModelVersion, io.ReadCloser, error) {
	v, _, err := r.resolve(ctx, model, ref)
	if err != nil {
		return nil, nil, err
	}
	if v.Status != registryv1.VersionStatus_VERSION_STATUS_READY {
		return nil, nil, apierr.Precondition("version %s@%d is %s, not READY", model, v.Version, v.Status)
	}
	rc, _, err := r.blobs.Open(ctx, v.Sha256)
	if errors.Is(err, blob.ErrNotFound) {
		return nil, nil, fmt.Errorf("artifact %s of %s@%d is missing from the blob store", v.Sha256, model, v.Version)
	}
	if err != nil {
		return nil, nil, err
	}
	return v, rc, nil
}

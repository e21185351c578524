package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"google.golang.org/protobuf/proto"

	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
	"github.com/bmaas/bmaas/pkg/apierr"
	"github.com/bmaas/bmaas/pkg/blob"
	"github.com/bmaas/bmaas/pkg/store"
)

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

// ImportVersion registers a file on the registry's host as a new version.
func (r *Registry) ImportVersion(ctx context.Context, req *registryv1.ImportModelVersionRequest) (*registryv1.ModelVersion, error) {
	if err := checkName("model", req.GetModel()); err != nil {
		return nil, err
	}
	if err := checkSpec(req.GetSpec()); err != nil {
		return nil, err
	}
	if err := checkSHA("sha256", req.GetSha256()); err != nil {
		return nil, err
	}
	p := req.GetSourcePath()
	if p == "" || !filepath.IsAbs(p) {
		return nil, apierr.Invalid("source_path", "must be an absolute path on the registry's host, got %q", p)
	}
	p = filepath.Clean(p)
	if _, _, err := r.getModel(ctx, req.GetModel()); err != nil {
		return nil, err
	}
	f, err := openImport(r.cfg.ImportRoots, p)
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }()
	spec := cloneSpec(req.GetSpec())
	if spec.Filename == "" {
		spec.Filename = filepath.Base(p)
	}
	if spec.Format == registryv1.ModelFormat_MODEL_FORMAT_UNSPECIFIED {
		spec.Format = DetectFormat(spec.Filename)
	}
	info, err := r.stage(ctx, "artifact", r.cfg.MaxArtifactBytes, f, req.GetSha256(), nil, nil)
	if err != nil {
		return nil, err
	}
	return r.commitVersion(ctx, req.GetModel(), spec, info)
}

func cloneSpec(s *registryv1.ModelVersionSpec) *registryv1.ModelVersionSpec {
	if s == nil {
		return &registryv1.ModelVersionSpec{}
	}
	return proto.Clone(s).(*registryv1.ModelVersionSpec)
}

// DetectFormat guesses an artifact's format from its file name.
func DetectFormat(name string) registryv1.ModelFormat {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".bmaas":
		return registryv1.ModelFormat_MODEL_FORMAT_NATIVE
	case ".onnx":
		return registryv1.ModelFormat_MODEL_FORMAT_ONNX
	case ".pt", ".pth":
		return registryv1.ModelFormat_MODEL_FORMAT_PYTORCH
	}
	return registryv1.ModelFormat_MODEL_FORMAT_OTHER
}

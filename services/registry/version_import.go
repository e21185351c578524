package registry

import (
	"context"
	"path/filepath"
	"strings"

	"google.golang.org/protobuf/proto"

	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
	"github.com/bmaas/bmaas/pkg/apierr"
)

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

package registry

import (
	"context"
	"errors"
	"fmt"
	"io"

	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
	"github.com/bmaas/bmaas/pkg/apierr"
	"github.com/bmaas/bmaas/pkg/blob"
	"github.com/bmaas/bmaas/pkg/store"
)

// bundleKey is where a code bundle's record is kept, by its digest.
func bundleKey(sha string) string { return store.Key("bundles", sha) }

// UploadBundle stores a code bundle and returns its record.
func (r *Registry) UploadBundle(ctx context.Context, hdr *registryv1.UploadBundleHeader, body io.Reader, late func() string) (*registryv1.Bundle, error) {
	if hdr == nil {
		return nil, apierr.Invalid("header", "the first message must be the header")
	}
	if err := checkSHA("header.sha256", hdr.Sha256); err != nil {
		return nil, err
	}
	info, err := r.stage(ctx, "bundle", r.cfg.MaxArtifactBytes, body, hdr.Sha256, late, nil)
	if err != nil {
		return nil, err
	}
	b := &registryv1.Bundle{Sha256: info.Digest, SizeBytes: info.Size, Filename: hdr.Filename, CreateTime: r.ts()}
	if _, err := r.st.Commit(ctx, nil, store.Put(bundleKey(info.Digest), b)); err != nil {
		return nil, fmt.Errorf("store bundle: %w", err)
	}
	return b, nil
}

// OpenBundle opens a code bundle by digest.
func (r *Registry) OpenBundle(ctx context.Context, sha string) (*registryv1.Bundle, io.ReadCloser, error) {
	if sha == "" {
		return nil, nil, apierr.Invalid("sha256", "is required")
	}
	if err := checkSHA("sha256", sha); err != nil {
		return nil, nil, err
	}
	b := &registryv1.Bundle{}
	if _, err := r.st.Get(ctx, bundleKey(sha), b); errors.Is(err, store.ErrNotFound) {
		return nil, nil, apierr.NotFound("bundle", sha)
	} else if err != nil {
		return nil, nil, err
	}
	rc, _, err := r.blobs.Open(ctx, sha)
	if errors.Is(err, blob.ErrNotFound) {
		return nil, nil, fmt.Errorf("bundle %s is missing from the blob store", sha)
	}
	return b, rc, err
}

package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"

	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
	"github.com/bmaas/bmaas/pkg/apierr"
	"github.com/bmaas/bmaas/pkg/blob"
	"github.com/bmaas/bmaas/pkg/store"
)

var jobIDRE = regexp.MustCompile(`^[0-9A-Za-z][0-9A-Za-z_-]{0,63}$`)

func checkpointKey(job string) string { return store.Key("checkpoints", job) }
func bundleKey(sha string) string     { return store.Key("bundles", sha) }

// UploadCheckpoint stores a job's newest checkpoint; an older step never
// replaces a newer one.
func (r *Registry) UploadCheckpoint(ctx context.Context, hdr *registryv1.UploadCheckpointHeader, body io.Reader, late func() string) (*registryv1.Checkpoint, error) {
	if hdr == nil {
		return nil, apierr.Invalid("header", "the first message must be the header")
	}
	if !jobIDRE.MatchString(hdr.JobId) {
		return nil, apierr.Invalid("header.job_id", "%q is not a job id", hdr.JobId)
	}
	if hdr.Step < 0 || hdr.Rank < 0 {
		return nil, apierr.Invalid("header.step", "step and rank must not be negative")
	}
	if err := checkSHA("header.sha256", hdr.Sha256); err != nil {
		return nil, err
	}
	if cur, err := r.GetCheckpoint(ctx, hdr.JobId); err == nil && cur.Step > hdr.Step {
		return nil, apierr.Precondition("job %s already has a checkpoint of step %d, newer than %d", hdr.JobId, cur.Step, hdr.Step)
	}
	info, err := r.stage(ctx, "checkpoint", r.cfg.MaxArtifactBytes, body, hdr.Sha256, late, nil)
	if err != nil {
		return nil, err
	}
	cp := &registryv1.Checkpoint{JobId: hdr.JobId, Step: hdr.Step, Rank: hdr.Rank, Metadata: hdr.Metadata,
		Sha256: info.Digest, SizeBytes: info.Size, CreateTime: r.ts()}
	key := checkpointKey(hdr.JobId)
	for range maxRetries {
		cur := &registryv1.Checkpoint{}
		rev, err := r.st.Get(ctx, key, cur)
		switch {
		case errors.Is(err, store.ErrNotFound):
			rev = 0
		case err != nil:
			return nil, err
		case cur.Step > cp.Step:
			return nil, apierr.Precondition("job %s already has a checkpoint of step %d, newer than %d", hdr.JobId, cur.Step, cp.Step)
		}
		_, err = r.st.Commit(ctx, []store.Cond{{Key: key, Rev: rev}}, store.Put(key, cp))
		if store.IsStale(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("store checkpoint of %s: %w", hdr.JobId, err)
		}
		r.kickGC()
		return cp, nil
	}
	return nil, apierr.Conflict("checkpoint of %s is changing too fast; retry", hdr.JobId)
}

// GetCheckpoint returns a job's newest checkpoint record.
func (r *Registry) GetCheckpoint(ctx context.Context, job string) (*registryv1.Checkpoint, error) {
	if !jobIDRE.MatchString(job) {
		return nil, apierr.Invalid("job_id", "%q is not a job id", job)
	}
	cp := &registryv1.Checkpoint{}
	_, err := r.st.Get(ctx, checkpointKey(job), cp)
	if errors.Is(err, store.ErrNotFound) {
		return nil, apierr.NotFound("checkpoint of job", job)
	}
	return cp, err
}

// OpenCheckpoint opens a job's newest checkpoint.
func (r *Registry) OpenCheckpoint(ctx context.Context, job string) (*registryv1.Checkpoint, io.ReadCloser, error) {
	cp, err := r.GetCheckpoint(ctx, job)
	if err != nil {
		return nil, nil, err
	}
	rc, _, err := r.blobs.Open(ctx, cp.Sha256)
	if errors.Is(err, blob.ErrNotFound) {
		return nil, nil, fmt.Errorf("checkpoint %s of job %s is missing from the blob store", cp.Sha256, job)
	}
	return cp, rc, err
}

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

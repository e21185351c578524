package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"

	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
	"github.com/bmaas/bmaas/pkg/apierr"
	"github.com/bmaas/bmaas/pkg/authz"
	"github.com/bmaas/bmaas/pkg/blob"
	"github.com/bmaas/bmaas/pkg/iam"
	"github.com/bmaas/bmaas/pkg/store"
)

var jobIDRE = regexp.MustCompile(`^[0-9A-Za-z][0-9A-Za-z_-]{0,63}$`)

func checkpointKey(job string) string { return store.Key("checkpoints", job) }

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
		Sha256: info.Digest, SizeBytes: info.Size, CreateTime: r.ts(), Project: hdr.Project}
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
	if err != nil {
		return nil, err
	}
	// A job's checkpoint is its project's.
	if err := iam.CheckIn(ctx, "jobs", "checkpoint of job", job, cp.GetProject(), authz.Read); err != nil {
		return nil, err
	}
	return cp, nil
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

package registry

import (
	"context"
	"errors"
	"fmt"
	"io"

	commonv1 "github.com/bmaas/bmaas/api/bmaas/common/v1"
	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
	"github.com/bmaas/bmaas/pkg/apierr"
	"github.com/bmaas/bmaas/pkg/blob"
	"github.com/bmaas/bmaas/pkg/iam"
	"github.com/bmaas/bmaas/pkg/ml/dataset"
	"github.com/bmaas/bmaas/pkg/store"
)

// UploadDataset stores a CSV as a new dataset version. The CSV is profiled
// while it streams in (schema, per-column statistics); a malformed CSV is
// rejected and nothing is written.
func (r *Registry) UploadDataset(ctx context.Context, hdr *registryv1.UploadDatasetHeader, body io.Reader, late func() string) (*registryv1.Dataset, *registryv1.DatasetVersion, error) {
	if hdr == nil {
		return nil, nil, apierr.Invalid("header", "the first message must be the header")
	}
	if err := checkName("header.name", hdr.Name); err != nil {
		return nil, nil, err
	}
	if err := iam.ProjectExists(ctx, r.st, "header.name", iam.ProjectOfName(hdr.Name)); err != nil {
		return nil, nil, err
	}
	if err := checkLabels("header.labels", hdr.Labels); err != nil {
		return nil, nil, err
	}
	if err := checkSHA("header.sha256", hdr.Sha256); err != nil {
		return nil, nil, err
	}
	pr, pw := io.Pipe()
	defer func() { _ = pw.Close() }()
	type result struct {
		stats *commonv1.DatasetStats
		err   error
	}
	done := make(chan result, 1)
	go func() {
		st, err := dataset.Profile(pr, dataset.StatsOptions{})
		// Drain so that the writer never blocks after an early error.
		_, _ = io.Copy(io.Discard, pr)
		done <- result{st, err}
	}()
	var stats *commonv1.DatasetStats
	profiled := func(copyErr error) error {
		// Closing the pipe ends the profile: at EOF when the body was read
		// whole, with the copy's error otherwise.
		_ = pw.CloseWithError(copyErr)
		res := <-done
		if copyErr != nil {
			return nil // the copy's own error is reported by stage
		}
		if errors.Is(res.err, dataset.ErrInvalidCSV) || errors.Is(res.err, dataset.ErrEmpty) {
			return apierr.Invalid("chunk", "%v", res.err)
		}
		if res.err != nil {
			return fmt.Errorf("profile dataset: %w", res.err)
		}
		stats = res.stats
		return nil
	}
	info, err := r.stage(ctx, "dataset", r.cfg.MaxDatasetBytes, io.TeeReader(body, pw), hdr.Sha256, late, profiled)
	if err != nil {
		return nil, nil, err
	}
	now := r.ts()
	dv := &registryv1.DatasetVersion{Dataset: hdr.Name, Sha256: info.Digest, SizeBytes: info.Size,
		Stats: stats, Filename: hdr.Filename, CreateTime: now}
	for range maxRetries {
		d := &registryv1.Dataset{}
		rev, err := r.st.Get(ctx, datasetKey(hdr.Name), d)
		switch {
		case errors.Is(err, store.ErrNotFound):
			d = &registryv1.Dataset{Name: hdr.Name, CreateTime: now}
		case err != nil:
			return nil, nil, err
		}
		if hdr.Description != "" {
			d.Description = hdr.Description
		}
		if hdr.Labels != nil {
			d.Labels = hdr.Labels
		}
		d.LatestVersion++
		d.UpdateTime = now
		d.Etag, d.Latest = "", nil
		dv.Version = d.LatestVersion
		quota, err := r.checkStorage(ctx, hdr.Name, info.Size)
		if err != nil {
			return nil, nil, err
		}
		nrev, err := r.st.Commit(ctx, append([]store.Cond{{Key: datasetKey(hdr.Name), Rev: rev}}, quota...),
			store.Put(datasetKey(hdr.Name), d), store.Put(datasetVersionKey(hdr.Name, dv.Version), dv))
		if store.IsStale(err) {
			continue
		}
		if store.IsTooLarge(err) {
			return nil, nil, apierr.Exhausted("dataset %q: its schema and statistics (%d columns) are too large to store; "+
				"upload fewer columns, or shorter text values", hdr.Name, len(stats.GetColumns()))
		}
		if err != nil {
			return nil, nil, fmt.Errorf("store dataset %s: %w", hdr.Name, err)
		}
		d.Etag, d.Latest = store.Etag(nrev), dv
		typ := "version.created"
		if dv.Version == 1 {
			typ = "created"
		}
		r.publish(ctx, "dataset", d.Name, typ, dv)
		return d, dv, nil
	}
	return nil, nil, apierr.Conflict("dataset %q is changing too fast; retry", hdr.Name)
}

// GetDataset returns a dataset with its newest version.
func (r *Registry) GetDataset(ctx context.Context, name string) (*registryv1.Dataset, error) {
	if err := checkName("name", name); err != nil {
		return nil, err
	}
	d := &registryv1.Dataset{}
	rev, err := r.st.Get(ctx, datasetKey(name), d)
	if errors.Is(err, store.ErrNotFound) {
		return nil, apierr.NotFound("dataset", name)
	}
	if err != nil {
		return nil, err
	}
	d.Etag = store.Etag(rev)
	dv := &registryv1.DatasetVersion{}
	if _, err := r.st.Get(ctx, datasetVersionKey(name, d.LatestVersion), dv); err == nil {
		d.Latest = dv
	}
	return d, nil
}

// ListDatasets pages through datasets.
func (r *Registry) ListDatasets(ctx context.Context, req *registryv1.ListDatasetsRequest) (*registryv1.ListDatasetsResponse, error) {
	size, err := store.PageSize("page_size", req.GetPageSize())
	if err != nil {
		return nil, err
	}
	sel, err := parseSelector("label_selector", req.GetLabelSelector())
	if err != nil {
		return nil, err
	}
	project := iam.ProjectFrom(ctx)
	items, next, err := store.List(ctx, r.st, iam.ProjectPrefix(datasetsPrefix(), project), size, req.GetPageToken(),
		func() *registryv1.Dataset { return &registryv1.Dataset{} },
		func(d *registryv1.Dataset) bool { return iam.InProject(d.Name, project) && matches(d.Labels, sel) })
	if err != nil {
		return nil, err
	}
	out := &registryv1.ListDatasetsResponse{NextPageToken: next, Datasets: make([]*registryv1.Dataset, len(items))}
	for i, it := range items {
		it.Msg.Etag = store.Etag(it.Rev)
		out.Datasets[i] = it.Msg
	}
	return out, nil
}

// GetDatasetVersion returns one version (a number or latest).
func (r *Registry) GetDatasetVersion(ctx context.Context, name, ref string) (*registryv1.DatasetVersion, error) {
	d, err := r.GetDataset(ctx, name)
	if err != nil {
		return nil, err
	}
	rf, err := parseRef("version", ref)
	if err != nil {
		return nil, err
	}
	num := rf.num
	switch rf.alias {
	case "":
	case refLatest:
		num = d.LatestVersion
	default:
		return nil, apierr.Invalid("version", "datasets have no aliases: use a number or latest, got %q", ref)
	}
	dv := &registryv1.DatasetVersion{}
	_, err = r.st.Get(ctx, datasetVersionKey(name, num), dv)
	if errors.Is(err, store.ErrNotFound) {
		return nil, apierr.NotFound("dataset version", fmt.Sprintf("%s@%d", name, num))
	}
	return dv, err
}

// ListDatasetVersions pages through a dataset's versions.
func (r *Registry) ListDatasetVersions(ctx context.Context, req *registryv1.ListDatasetVersionsRequest) (*registryv1.ListDatasetVersionsResponse, error) {
	if _, err := r.GetDataset(ctx, req.GetDataset()); err != nil {
		return nil, err
	}
	size, err := store.PageSize("page_size", req.GetPageSize())
	if err != nil {
		return nil, err
	}
	items, next, err := store.List(ctx, r.st, datasetVersionsPrefix(req.GetDataset()), size, req.GetPageToken(),
		func() *registryv1.DatasetVersion { return &registryv1.DatasetVersion{} }, nil)
	if err != nil {
		return nil, err
	}
	out := &registryv1.ListDatasetVersionsResponse{NextPageToken: next, Versions: make([]*registryv1.DatasetVersion, len(items))}
	for i, it := range items {
		out.Versions[i] = it.Msg
	}
	return out, nil
}

// OpenDataset opens the CSV of a dataset version.
func (r *Registry) OpenDataset(ctx context.Context, name, ref string) (*registryv1.DatasetVersion, io.ReadCloser, error) {
	dv, err := r.GetDatasetVersion(ctx, name, ref)
	if err != nil {
		return nil, nil, err
	}
	rc, _, err := r.blobs.Open(ctx, dv.Sha256)
	if errors.Is(err, blob.ErrNotFound) {
		return nil, nil, fmt.Errorf("data %s of dataset %s@%d is missing from the blob store", dv.Sha256, name, dv.Version)
	}
	return dv, rc, err
}

// DeleteDataset deletes a dataset and all its versions.
func (r *Registry) DeleteDataset(ctx context.Context, name string) error {
	d, err := r.GetDataset(ctx, name)
	if err != nil {
		return err
	}
	rev, _ := store.ParseEtag("etag", d.Etag)
	_, err = r.st.Commit(ctx, []store.Cond{{Key: datasetKey(name), Rev: rev}},
		store.Delete(datasetKey(name)), store.DeletePrefix(datasetVersionsPrefix(name)))
	if store.IsStale(err) {
		return apierr.Conflict("dataset %q changed while deleting; retry", name)
	}
	if err != nil {
		return fmt.Errorf("delete dataset %s: %w", name, err)
	}
	r.publish(ctx, "dataset", name, "deleted", d)
	r.kickGC()
	return nil
}

package registry

import (
	"context"

	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
)

func (h *handler) UploadDataset(stream registryv1.RegistryService_UploadDatasetServer) error {
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	hdr := first.GetHeader() // nil is refused by the domain, naming the field
	body := recvBody(stream.Recv, func(m *registryv1.UploadDatasetRequest) ([]byte, *registryv1.UploadTrailer, bool) {
		return m.GetChunk(), m.GetTrailer(), m.GetHeader() == nil
	})
	d, dv, err := h.r.UploadDataset(stream.Context(), hdr, body, func() string { return body.trailer })
	if err != nil {
		return err
	}
	return stream.SendAndClose(&registryv1.UploadDatasetResponse{Dataset: d, Version: dv})
}

func (h *handler) GetDataset(ctx context.Context, req *registryv1.GetDatasetRequest) (*registryv1.GetDatasetResponse, error) {
	d, err := h.r.GetDataset(ctx, req.GetName())
	return &registryv1.GetDatasetResponse{Dataset: d}, err
}

func (h *handler) ListDatasets(ctx context.Context, req *registryv1.ListDatasetsRequest) (*registryv1.ListDatasetsResponse, error) {
	return h.r.ListDatasets(ctx, req)
}

func (h *handler) GetDatasetVersion(ctx context.Context, req *registryv1.GetDatasetVersionRequest) (*registryv1.GetDatasetVersionResponse, error) {
	dv, err := h.r.GetDatasetVersion(ctx, req.GetDataset(), req.GetVersion())
	return &registryv1.GetDatasetVersionResponse{Version: dv}, err
}

func (h *handler) ListDatasetVersions(ctx context.Context, req *registryv1.ListDatasetVersionsRequest) (*registryv1.ListDatasetVersionsResponse, error) {
	return h.r.ListDatasetVersions(ctx, req)
}

func (h *handler) DownloadDataset(req *registryv1.DownloadDatasetRequest, stream registryv1.RegistryService_DownloadDatasetServer) error {
	ref := req.GetVersion()
	if ref == "" {
		ref = refLatest
	}
	dv, rc, err := h.r.OpenDataset(stream.Context(), req.GetDataset(), ref)
	if err != nil {
		return err
	}
	return sendDownload(rc, h.r.cfg.ChunkBytes, stream.Send,
		&registryv1.DownloadDatasetResponse{Payload: &registryv1.DownloadDatasetResponse_Version{Version: dv}},
		func(b []byte) *registryv1.DownloadDatasetResponse {
			return &registryv1.DownloadDatasetResponse{Payload: &registryv1.DownloadDatasetResponse_Chunk{Chunk: b}}
		})
}

func (h *handler) DeleteDataset(ctx context.Context, req *registryv1.DeleteDatasetRequest) (*registryv1.DeleteDatasetResponse, error) {
	return &registryv1.DeleteDatasetResponse{}, h.r.DeleteDataset(ctx, req.GetName())
}

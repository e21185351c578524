package registry

import (
	"context"
	"errors"
	"io"

	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
)

// handler adapts the gRPC API to the Registry; errors are mapped to status
// codes by the server's interceptor.
type handler struct {
	registryv1.UnimplementedRegistryServiceServer
	r *Registry
}

func (h *handler) CreateModel(ctx context.Context, req *registryv1.CreateModelRequest) (*registryv1.CreateModelResponse, error) {
	m, err := h.r.CreateModel(ctx, req.GetModel())
	return &registryv1.CreateModelResponse{Model: m}, err
}

func (h *handler) GetModel(ctx context.Context, req *registryv1.GetModelRequest) (*registryv1.GetModelResponse, error) {
	m, err := h.r.GetModel(ctx, req.GetName())
	return &registryv1.GetModelResponse{Model: m}, err
}

func (h *handler) ListModels(ctx context.Context, req *registryv1.ListModelsRequest) (*registryv1.ListModelsResponse, error) {
	return h.r.ListModels(ctx, req)
}

func (h *handler) UpdateModel(ctx context.Context, req *registryv1.UpdateModelRequest) (*registryv1.UpdateModelResponse, error) {
	m, err := h.r.UpdateModel(ctx, req.GetModel(), req.GetUpdateMask())
	return &registryv1.UpdateModelResponse{Model: m}, err
}

func (h *handler) DeleteModel(ctx context.Context, req *registryv1.DeleteModelRequest) (*registryv1.DeleteModelResponse, error) {
	return &registryv1.DeleteModelResponse{}, h.r.DeleteModel(ctx, req.GetName(), req.GetForce())
}

func (h *handler) CreateModelVersion(stream registryv1.RegistryService_CreateModelVersionServer) error {
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	hdr := first.GetHeader() // nil is refused by the domain, naming the field
	body := recvBody(stream.Recv, func(m *registryv1.CreateModelVersionRequest) ([]byte, *registryv1.UploadTrailer, bool) {
		return m.GetChunk(), m.GetTrailer(), m.GetHeader() == nil
	})
	v, err := h.r.CreateVersion(stream.Context(), hdr, body, func() string { return body.trailer })
	if err != nil {
		return err
	}
	return stream.SendAndClose(&registryv1.CreateModelVersionResponse{Version: v})
}

func (h *handler) ImportModelVersion(ctx context.Context, req *registryv1.ImportModelVersionRequest) (*registryv1.ImportModelVersionResponse, error) {
	v, err := h.r.ImportVersion(ctx, req)
	return &registryv1.ImportModelVersionResponse{Version: v}, err
}

func (h *handler) GetModelVersion(ctx context.Context, req *registryv1.GetModelVersionRequest) (*registryv1.GetModelVersionResponse, error) {
	v, err := h.r.GetVersion(ctx, req.GetModel(), req.GetVersion())
	return &registryv1.GetModelVersionResponse{Version: v}, err
}

func (h *handler) ListModelVersions(ctx context.Context, req *registryv1.ListModelVersionsRequest) (*registryv1.ListModelVersionsResponse, error) {
	return h.r.ListVersions(ctx, req)
}

func (h *handler) UpdateModelVersion(ctx context.Context, req *registryv1.UpdateModelVersionRequest) (*registryv1.UpdateModelVersionResponse, error) {
	v, err := h.r.UpdateVersion(ctx, req)
	return &registryv1.UpdateModelVersionResponse{Version: v}, err
}

func (h *handler) DownloadModelVersion(req *registryv1.DownloadModelVersionRequest, stream registryv1.RegistryService_DownloadModelVersionServer) error {
	v, rc, err := h.r.OpenVersion(stream.Context(), req.GetModel(), req.GetVersion())
	if err != nil {
		return err
	}
	return sendDownload(rc, h.r.cfg.ChunkBytes, stream.Send,
		&registryv1.DownloadModelVersionResponse{Payload: &registryv1.DownloadModelVersionResponse_Version{Version: v}},
		func(b []byte) *registryv1.DownloadModelVersionResponse {
			return &registryv1.DownloadModelVersionResponse{Payload: &registryv1.DownloadModelVersionResponse_Chunk{Chunk: b}}
		})
}

// sendDownload sends first (the record), then rc's bytes in chunks, and
// closes rc.
func sendDownload[M any](rc io.ReadCloser, n int, send func(M) error, first M, chunk func([]byte) M) error {
	defer func() { _ = rc.Close() }()
	if err := send(first); err != nil {
		return err
	}
	return sendChunks(rc, n, func(b []byte) error { return send(chunk(b)) })
}

// sendChunks reads r in chunks of size n and sends each. gRPC serialises a
// message before Send returns, so one buffer serves every chunk.
func sendChunks(r io.Reader, n int, send func([]byte) error) error {
	buf := make([]byte, n)
	for {
		k, err := io.ReadFull(r, buf)
		if k > 0 {
			if serr := send(buf[:k]); serr != nil {
				return serr
			}
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

func (h *handler) DeleteModelVersion(ctx context.Context, req *registryv1.DeleteModelVersionRequest) (*registryv1.DeleteModelVersionResponse, error) {
	return &registryv1.DeleteModelVersionResponse{}, h.r.DeleteVersion(ctx, req.GetModel(), req.GetVersion())
}

func (h *handler) SetAlias(ctx context.Context, req *registryv1.SetAliasRequest) (*registryv1.SetAliasResponse, error) {
	m, prev, err := h.r.SetAlias(ctx, req.GetModel(), req.GetAlias(), req.GetVersion(), req.GetExpectedVersion())
	return &registryv1.SetAliasResponse{Model: m, PreviousVersion: prev}, err
}

func (h *handler) GetAlias(ctx context.Context, req *registryv1.GetAliasRequest) (*registryv1.GetAliasResponse, error) {
	v, err := h.r.GetAlias(ctx, req.GetModel(), req.GetAlias())
	return &registryv1.GetAliasResponse{Version: v}, err
}

func (h *handler) DeleteAlias(ctx context.Context, req *registryv1.DeleteAliasRequest) (*registryv1.DeleteAliasResponse, error) {
	m, err := h.r.DeleteAlias(ctx, req.GetModel(), req.GetAlias())
	return &registryv1.DeleteAliasResponse{Model: m}, err
}

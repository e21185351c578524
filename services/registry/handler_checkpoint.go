package registry

import (
	"context"

	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
	"github.com/bmaas/bmaas/pkg/apierr"
)

// recvBody builds the body reader of a client stream whose messages carry
// a chunk or a trailer after the header.
func recvBody[M any](recv func() (M, error), part func(M) ([]byte, *registryv1.UploadTrailer, bool)) *chunkReader {
	return &chunkReader{next: func() ([]byte, string, bool, error) {
		msg, err := recv()
		if err != nil {
			return nil, "", false, err
		}
		chunk, trailer, ok := part(msg)
		switch {
		case !ok:
			return nil, "", false, apierr.Invalid("header", "sent twice")
		case trailer != nil:
			return nil, trailer.GetSha256(), true, nil
		}
		return chunk, "", false, nil
	}}
}

func (h *handler) UploadCheckpoint(stream registryv1.RegistryService_UploadCheckpointServer) error {
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	body := recvBody(stream.Recv, func(m *registryv1.UploadCheckpointRequest) ([]byte, *registryv1.UploadTrailer, bool) {
		return m.GetChunk(), m.GetTrailer(), m.GetHeader() == nil
	})
	cp, err := h.r.UploadCheckpoint(stream.Context(), first.GetHeader(), body, func() string { return body.trailer })
	if err != nil {
		return err
	}
	return stream.SendAndClose(&registryv1.UploadCheckpointResponse{Checkpoint: cp})
}

func (h *handler) GetCheckpoint(ctx context.Context, req *registryv1.GetCheckpointRequest) (*registryv1.GetCheckpointResponse, error) {
	cp, err := h.r.GetCheckpoint(ctx, req.GetJobId())
	return &registryv1.GetCheckpointResponse{Checkpoint: cp}, err
}

func (h *handler) DownloadCheckpoint(req *registryv1.DownloadCheckpointRequest, stream registryv1.RegistryService_DownloadCheckpointServer) error {
	cp, rc, err := h.r.OpenCheckpoint(stream.Context(), req.GetJobId())
	if err != nil {
		return err
	}
	return sendDownload(rc, h.r.cfg.ChunkBytes, stream.Send,
		&registryv1.DownloadCheckpointResponse{Payload: &registryv1.DownloadCheckpointResponse_Checkpoint{Checkpoint: cp}},
		func(b []byte) *registryv1.DownloadCheckpointResponse {
			return &registryv1.DownloadCheckpointResponse{Payload: &registryv1.DownloadCheckpointResponse_Chunk{Chunk: b}}
		})
}

func (h *handler) UploadBundle(stream registryv1.RegistryService_UploadBundleServer) error {
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	body := recvBody(stream.Recv, func(m *registryv1.UploadBundleRequest) ([]byte, *registryv1.UploadTrailer, bool) {
		return m.GetChunk(), m.GetTrailer(), m.GetHeader() == nil
	})
	b, err := h.r.UploadBundle(stream.Context(), first.GetHeader(), body, func() string { return body.trailer })
	if err != nil {
		return err
	}
	return stream.SendAndClose(&registryv1.UploadBundleResponse{Bundle: b})
}

func (h *handler) DownloadBundle(req *registryv1.DownloadBundleRequest, stream registryv1.RegistryService_DownloadBundleServer) error {
	b, rc, err := h.r.OpenBundle(stream.Context(), req.GetSha256())
	if err != nil {
		return err
	}
	return sendDownload(rc, h.r.cfg.ChunkBytes, stream.Send,
		&registryv1.DownloadBundleResponse{Payload: &registryv1.DownloadBundleResponse_Bundle{Bundle: b}},
		func(c []byte) *registryv1.DownloadBundleResponse {
			return &registryv1.DownloadBundleResponse{Payload: &registryv1.DownloadBundleResponse_Chunk{Chunk: c}}
		})
}

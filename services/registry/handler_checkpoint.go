package registry

import (
	"context"

	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
)

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

package registry

import (
	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
)

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

package chunkstream

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
)

// Send sends an upload stream's header, then body in chunks, then (when
// the header had no digest) a trailer with the digest computed on the
// way, and returns the server's answer; a failed Send surfaces the
// server's error.
func Send[Req any, Resp any](body io.Reader, stream interface {
	Send(Req) error
	CloseAndRecv() (Resp, error)
}, hasDigest bool, header Req, chunk func([]byte) Req, trailer func(*registryv1.UploadTrailer) Req) (Resp, error) {
	h := sha256.New()
	err := stream.Send(header)
	if err == nil {
		err = pump(body, h, func(b []byte) error { return stream.Send(chunk(b)) })
	}
	if err == nil && !hasDigest {
		err = stream.Send(trailer(&registryv1.UploadTrailer{Sha256: hex.EncodeToString(h.Sum(nil))}))
	}
	resp, rerr := stream.CloseAndRecv()
	if rerr != nil {
		return resp, rerr
	}
	return resp, err
}

// pump reads r in chunks of 1 MiB, hashing and sending each.
func pump(r io.Reader, h io.Writer, send func([]byte) error) error {
	buf := make([]byte, 1<<20)
	for {
		n, err := io.ReadFull(r, buf)
		if n > 0 {
			_, _ = h.Write(buf[:n])
			if serr := send(buf[:n]); serr != nil {
				return serr
			}
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil
		}
		if err != nil {
			return status.Errorf(codes.InvalidArgument, "body: %v", err)
		}
	}
}

// UploadDataset stores body as a new version of the dataset hdr names.
func UploadDataset(ctx context.Context, c registryv1.RegistryServiceClient, hdr *registryv1.UploadDatasetHeader, body io.Reader) (*registryv1.UploadDatasetResponse, error) {
	stream, err := c.UploadDataset(ctx)
	if err != nil {
		return nil, err
	}
	return Send(body, stream, hdr.GetSha256() != "",
		&registryv1.UploadDatasetRequest{Payload: &registryv1.UploadDatasetRequest_Header{Header: hdr}},
		func(b []byte) *registryv1.UploadDatasetRequest {
			return &registryv1.UploadDatasetRequest{Payload: &registryv1.UploadDatasetRequest_Chunk{Chunk: b}}
		},
		func(t *registryv1.UploadTrailer) *registryv1.UploadDatasetRequest {
			return &registryv1.UploadDatasetRequest{Payload: &registryv1.UploadDatasetRequest_Trailer{Trailer: t}}
		})
}

package traineragent

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
	"github.com/bmaas/bmaas/pkg/chunkstream"
)

// chunkBytes is the size of uploaded chunks.
const chunkBytes = 1 << 20

// waitReady lets calls wait for a registry replica to come up (all
// services may be starting in one process) within the call's deadline.
var waitReady = grpc.WaitForReady(true)

// regClient is the registry as the agent uses it: streamed transfers.
type regClient struct {
	c registryv1.RegistryServiceClient
}

// errNotFound: the registry has no such object.
var errNotFound = errors.New("not found")

func notFound(err error) error {
	if status.Code(err) == codes.NotFound {
		return fmt.Errorf("%w: %s", errNotFound, status.Convert(err).Message())
	}
	return err
}

// downloadDataset writes a dataset version's CSV to w; version 0 is the newest.
func (r *regClient) downloadDataset(ctx context.Context, name string, version int64, w io.Writer) (*registryv1.DatasetVersion, error) {
	v := "latest"
	if version > 0 {
		v = strconv.FormatInt(version, 10)
	}
	st, err := r.c.DownloadDataset(ctx, &registryv1.DownloadDatasetRequest{Dataset: name, Version: v}, waitReady)
	if err != nil {
		return nil, err
	}
	var head *registryv1.DatasetVersion
	err = chunkstream.RecvAll(func() ([]byte, error) {
		m, err := st.Recv()
		if hv := m.GetVersion(); hv != nil {
			head = hv
		}
		return m.GetChunk(), err
	}, w)
	return head, notFound(err)
}

// downloadCheckpoint writes a job's newest checkpoint to w; errNotFound
// when the job has none.
func (r *regClient) downloadCheckpoint(ctx context.Context, job string, w io.Writer) (*registryv1.Checkpoint, error) {
	st, err := r.c.DownloadCheckpoint(ctx, &registryv1.DownloadCheckpointRequest{JobId: job}, waitReady)
	if err != nil {
		return nil, notFound(err)
	}
	var head *registryv1.Checkpoint
	err = chunkstream.RecvAll(func() ([]byte, error) {
		m, err := st.Recv()
		if hc := m.GetCheckpoint(); hc != nil {
			head = hc
		}
		return m.GetChunk(), err
	}, w)
	return head, notFound(err)
}

// downloadBundle writes a code bundle to w.
func (r *regClient) downloadBundle(ctx context.Context, sha string, w io.Writer) error {
	st, err := r.c.DownloadBundle(ctx, &registryv1.DownloadBundleRequest{Sha256: sha}, waitReady)
	if err != nil {
		return err
	}
	return notFound(chunkstream.RecvAll(func() ([]byte, error) {
		m, err := st.Recv()
		return m.GetChunk(), err
	}, w))
}

// sendAll streams body in chunks and then its sha256 as the trailer.
func sendAll(body io.Reader, chunk func([]byte) error, trailer func(sha string) error) error {
	h := sha256.New()
	buf := make([]byte, chunkBytes)
	for {
		n, err := io.ReadFull(body, buf)
		if n > 0 {
			h.Write(buf[:n])
			if serr := chunk(buf[:n]); serr != nil {
				return serr
			}
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			break
		}
		if err != nil {
			return err
		}
	}
	return trailer(hex.EncodeToString(h.Sum(nil)))
}

func (r *regClient) uploadCheckpoint(ctx context.Context, hdr *registryv1.UploadCheckpointHeader, body io.Reader) (*registryv1.Checkpoint, error) {
	st, err := r.c.UploadCheckpoint(ctx, waitReady)
	if err != nil {
		return nil, err
	}
	send := func(m *registryv1.UploadCheckpointRequest) error { return st.Send(m) }
	if err := send(&registryv1.UploadCheckpointRequest{Payload: &registryv1.UploadCheckpointRequest_Header{Header: hdr}}); err != nil {
		return nil, closeErr(st.CloseAndRecv, err)
	}
	err = sendAll(body, func(b []byte) error {
		return send(&registryv1.UploadCheckpointRequest{Payload: &registryv1.UploadCheckpointRequest_Chunk{Chunk: b}})
	}, func(sha string) error {
		return send(&registryv1.UploadCheckpointRequest{Payload: &registryv1.UploadCheckpointRequest_Trailer{Trailer: &registryv1.UploadTrailer{Sha256: sha}}})
	})
	if err != nil {
		return nil, closeErr(st.CloseAndRecv, err)
	}
	resp, err := st.CloseAndRecv()
	return resp.GetCheckpoint(), err
}

func (r *regClient) uploadBundle(ctx context.Context, filename string, body io.Reader) (*registryv1.Bundle, error) {
	st, err := r.c.UploadBundle(ctx, waitReady)
	if err != nil {
		return nil, err
	}
	hdr := &registryv1.UploadBundleHeader{Filename: filename}
	if err := st.Send(&registryv1.UploadBundleRequest{Payload: &registryv1.UploadBundleRequest_Header{Header: hdr}}); err != nil {
		return nil, closeErr(st.CloseAndRecv, err)
	}
	err = sendAll(body, func(b []byte) error {
		return st.Send(&registryv1.UploadBundleRequest{Payload: &registryv1.UploadBundleRequest_Chunk{Chunk: b}})
	}, func(sha string) error {
		return st.Send(&registryv1.UploadBundleRequest{Payload: &registryv1.UploadBundleRequest_Trailer{Trailer: &registryv1.UploadTrailer{Sha256: sha}}})
	})
	if err != nil {
		return nil, closeErr(st.CloseAndRecv, err)
	}
	resp, err := st.CloseAndRecv()
	return resp.GetBundle(), err
}

func (r *regClient) createVersion(ctx context.Context, model string, spec *registryv1.ModelVersionSpec, body io.Reader) (*registryv1.ModelVersion, error) {
	st, err := r.c.CreateModelVersion(ctx, waitReady)
	if err != nil {
		return nil, err
	}
	hdr := &registryv1.CreateModelVersionHeader{Model: model, Spec: spec}
	if err := st.Send(&registryv1.CreateModelVersionRequest{Payload: &registryv1.CreateModelVersionRequest_Header{Header: hdr}}); err != nil {
		return nil, closeErr(st.CloseAndRecv, err)
	}
	err = sendAll(body, func(b []byte) error {
		return st.Send(&registryv1.CreateModelVersionRequest{Payload: &registryv1.CreateModelVersionRequest_Chunk{Chunk: b}})
	}, func(sha string) error {
		return st.Send(&registryv1.CreateModelVersionRequest{Payload: &registryv1.CreateModelVersionRequest_Trailer{Trailer: &registryv1.UploadTrailer{Sha256: sha}}})
	})
	if err != nil {
		return nil, closeErr(st.CloseAndRecv, err)
	}
	resp, err := st.CloseAndRecv()
	return resp.GetVersion(), err
}

// closeErr returns the server's error when a send failed because the
// server ended the stream (io.EOF), else the send's own error.
func closeErr[T any](closeAndRecv func() (T, error), err error) error {
	if errors.Is(err, io.EOF) {
		if _, rerr := closeAndRecv(); rerr != nil {
			return rerr
		}
	}
	return err
}

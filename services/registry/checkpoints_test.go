//go:build integration

package registry

import (
	"io"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"

	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
)

func (f *fixture) uploadCheckpoint(t *testing.T, job string, step int64, data []byte) (*registryv1.Checkpoint, error) {
	t.Helper()
	stream, err := f.c.UploadCheckpoint(t.Context())
	require.NoError(t, err)
	// A server that refuses the header at once ends the stream: a later
	// Send is io.EOF, and the refusal comes from CloseAndRecv.
	for _, m := range []*registryv1.UploadCheckpointRequest{
		{Payload: &registryv1.UploadCheckpointRequest_Header{Header: &registryv1.UploadCheckpointHeader{JobId: job, Step: step}}},
		{Payload: &registryv1.UploadCheckpointRequest_Chunk{Chunk: data}},
		{Payload: &registryv1.UploadCheckpointRequest_Trailer{Trailer: &registryv1.UploadTrailer{Sha256: digest(data)}}},
	} {
		if err := stream.Send(m); err != nil {
			require.ErrorIs(t, err, io.EOF)
			break
		}
	}
	resp, err := stream.CloseAndRecv()
	if err != nil {
		return nil, err
	}
	return resp.Checkpoint, nil
}

func TestCheckpointsAndBundles(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(c *Config) { c.GCGrace = 0 })
	ctx := t.Context()
	_, err := f.c.GetCheckpoint(ctx, &registryv1.GetCheckpointRequest{JobId: "01JOB"})
	requireCode(t, err, codes.NotFound, "01JOB")

	_, err = f.uploadCheckpoint(t, "01JOB", 3, []byte("state after epoch 3"))
	require.NoError(t, err)
	cp, err := f.uploadCheckpoint(t, "01JOB", 5, []byte("state after epoch 5"))
	require.NoError(t, err)
	require.Equal(t, int64(5), cp.Step)
	_, err = f.uploadCheckpoint(t, "01JOB", 4, []byte("late writer"))
	requireCode(t, err, codes.FailedPrecondition, "newer than 4")
	_, err = f.uploadCheckpoint(t, "bad id!", 1, []byte("x"))
	requireCode(t, err, codes.InvalidArgument, "header.job_id")

	stream, err := f.c.DownloadCheckpoint(ctx, &registryv1.DownloadCheckpointRequest{JobId: "01JOB"})
	require.NoError(t, err)
	var got []byte
	for {
		msg, err := stream.Recv()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		got = append(got, msg.GetChunk()...)
	}
	require.Equal(t, "state after epoch 5", string(got))

	// Replaced checkpoints are swept; the newest and the bundle stay.
	bs, err := f.c.UploadBundle(ctx)
	require.NoError(t, err)
	code := []byte("print('train')")
	require.NoError(t, bs.Send(&registryv1.UploadBundleRequest{Payload: &registryv1.UploadBundleRequest_Header{
		Header: &registryv1.UploadBundleHeader{Filename: "code.tar.gz", Sha256: digest(code)}}}))
	require.NoError(t, bs.Send(&registryv1.UploadBundleRequest{Payload: &registryv1.UploadBundleRequest_Chunk{Chunk: code}}))
	b, err := bs.CloseAndRecv()
	require.NoError(t, err)
	require.Equal(t, digest(code), b.Bundle.Sha256)
	n, err := f.svc.Registry().CollectGarbage(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, n, "only the replaced checkpoint of step 3 goes")
	require.Equal(t, 2, countBlobs(t, f))
}

//go:build integration

package tests

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"testing"

	"github.com/stretchr/testify/require"

	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
	"github.com/bmaas/bmaas/tests/harness"
)

func TestRestartFindsState(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	c := harness.Start(t, harness.WithDataDir(dir))
	ctx := t.Context()
	_, err := c.Registry.CreateModel(ctx, &registryv1.CreateModelRequest{Model: &registryv1.Model{Name: "keep"}})
	require.NoError(t, err)
	data := []byte("the model bytes")
	v := uploadBytes(t, c.Registry, "keep", data)
	_, err = c.Registry.SetAlias(ctx, &registryv1.SetAliasRequest{Model: "keep", Alias: "production", Version: "1"})
	require.NoError(t, err)
	require.NoError(t, c.Stop())

	c2 := harness.Start(t, harness.WithDataDir(dir))
	got, err := c2.Registry.GetModelVersion(ctx, &registryv1.GetModelVersionRequest{Model: "keep", Version: "production"})
	require.NoError(t, err)
	require.Equal(t, v.Sha256, got.Version.Sha256)
	require.Equal(t, data, downloadBytes(t, c2.Registry, "keep", "production"))
}

func uploadBytes(t *testing.T, c registryv1.RegistryServiceClient, model string, data []byte) *registryv1.ModelVersion {
	t.Helper()
	sum := sha256.Sum256(data)
	stream, err := c.CreateModelVersion(t.Context())
	require.NoError(t, err)
	require.NoError(t, stream.Send(&registryv1.CreateModelVersionRequest{Payload: &registryv1.CreateModelVersionRequest_Header{
		Header: &registryv1.CreateModelVersionHeader{Model: model, Sha256: hex.EncodeToString(sum[:])}}}))
	require.NoError(t, stream.Send(&registryv1.CreateModelVersionRequest{Payload: &registryv1.CreateModelVersionRequest_Chunk{Chunk: data}}))
	resp, err := stream.CloseAndRecv()
	require.NoError(t, err)
	return resp.Version
}

func downloadBytes(t *testing.T, c registryv1.RegistryServiceClient, model, ref string) []byte {
	t.Helper()
	stream, err := c.DownloadModelVersion(t.Context(), &registryv1.DownloadModelVersionRequest{Model: model, Version: ref})
	require.NoError(t, err)
	var out []byte
	for {
		msg, err := stream.Recv()
		if err == io.EOF {
			return out
		}
		require.NoError(t, err)
		out = append(out, msg.GetChunk()...)
	}
}

//go:build integration

package registry

import (
	"crypto/sha256"
	"encoding/hex"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
	"github.com/bmaas/bmaas/internal/testenv"
	"github.com/bmaas/bmaas/pkg/blob"
	"github.com/bmaas/bmaas/pkg/store"
)

type fixture struct {
	c     registryv1.RegistryServiceClient
	svc   *Service
	blobs *blob.Local
	st    *store.Store
}

func newFixture(t *testing.T, mutate func(*Config)) *fixture {
	t.Helper()
	cfg := DefaultConfig()
	if mutate != nil {
		mutate(&cfg)
	}
	blobs, err := blob.NewLocal(t.TempDir())
	require.NoError(t, err)
	st := store.New(testenv.EtcdClient(t))
	svc, err := New(cfg, Deps{Store: st, Blobs: blobs})
	require.NoError(t, err)
	require.NoError(t, svc.Start(t.Context()))
	conn := testenv.Serve(t, svc.Register)
	return &fixture{c: registryv1.NewRegistryServiceClient(conn), svc: svc, blobs: blobs, st: st}
}

func digest(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// upload sends data in chunks with the given header digest (and trailer
// digest if trailer != "").
func (f *fixture) upload(t *testing.T, model string, data []byte, sha, trailer string) (*registryv1.ModelVersion, error) {
	t.Helper()
	stream, err := f.c.CreateModelVersion(t.Context())
	require.NoError(t, err)
	require.NoError(t, stream.Send(&registryv1.CreateModelVersionRequest{Payload: &registryv1.CreateModelVersionRequest_Header{
		Header: &registryv1.CreateModelVersionHeader{Model: model, Sha256: sha,
			Spec: &registryv1.ModelVersionSpec{Format: registryv1.ModelFormat_MODEL_FORMAT_ONNX, Metrics: map[string]float64{"acc": 0.9}}},
	}}))
	for off := 0; off < len(data); off += 1000 {
		end := min(off+1000, len(data))
		if err := stream.Send(&registryv1.CreateModelVersionRequest{Payload: &registryv1.CreateModelVersionRequest_Chunk{Chunk: data[off:end]}}); err != nil {
			break
		}
	}
	if trailer != "" {
		_ = stream.Send(&registryv1.CreateModelVersionRequest{Payload: &registryv1.CreateModelVersionRequest_Trailer{Trailer: &registryv1.UploadTrailer{Sha256: trailer}}})
	}
	resp, err := stream.CloseAndRecv()
	if err != nil {
		return nil, err
	}
	return resp.Version, nil
}

func (f *fixture) download(t *testing.T, model, ref string) ([]byte, *registryv1.ModelVersion, error) {
	t.Helper()
	stream, err := f.c.DownloadModelVersion(t.Context(), &registryv1.DownloadModelVersionRequest{Model: model, Version: ref})
	require.NoError(t, err)
	var out []byte
	var v *registryv1.ModelVersion
	for {
		msg, err := stream.Recv()
		if err != nil {
			if status.Code(err) == codes.OK || err.Error() == "EOF" {
				return out, v, nil
			}
			return nil, nil, err
		}
		if msg.GetVersion() != nil {
			v = msg.GetVersion()
		}
		out = append(out, msg.GetChunk()...)
	}
}

func requireCode(t *testing.T, err error, code codes.Code, contains string) {
	t.Helper()
	require.Error(t, err)
	s := status.Convert(err)
	require.Equal(t, code, s.Code(), "message: %s", s.Message())
	require.Contains(t, s.Message(), contains)
}

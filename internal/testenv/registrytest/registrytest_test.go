//go:build integration

package registrytest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"testing"

	"github.com/stretchr/testify/require"

	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
	"github.com/bmaas/bmaas/internal/testenv"
	"github.com/bmaas/bmaas/pkg/membership"
)

// A started registry answers, joins the membership as asked, and takes a
// dataset larger than one chunk whole.
func TestStartServesAndJoins(t *testing.T) {
	t.Parallel()
	cli := testenv.EtcdClient(t)
	r := Start(t, Options{Etcd: cli, Member: "registry-1"})

	ms, err := membership.List(t.Context(), cli, "registry")
	require.NoError(t, err)
	require.Len(t, ms, 1)
	require.Equal(t, "registry-1", ms[0].ID)
	require.Equal(t, r.Addr, ms[0].Addr)

	r.CreateModel(t, "m")
	_, err = r.Client.GetModel(t.Context(), &registryv1.GetModelRequest{Name: "m"})
	require.NoError(t, err)

	data := bytes.Repeat([]byte("a,b,target\n1,2,0\n"), 40000) // about 680 KiB: three chunks
	v := UploadDataset(t, r.Client, "toy", "toy.csv", data)
	require.Equal(t, int64(1), v.Version)
	got, err := r.Client.GetDatasetVersion(t.Context(), &registryv1.GetDatasetVersionRequest{Dataset: "toy", Version: "1"})
	require.NoError(t, err)
	sum := sha256.Sum256(data)
	require.Equal(t, hex.EncodeToString(sum[:]), got.Version.Sha256)
	require.Equal(t, int64(len(data)), got.Version.SizeBytes)
}

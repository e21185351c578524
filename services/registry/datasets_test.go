//go:build integration

package registry

import (
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"

	commonv1 "github.com/bmaas/bmaas/api/bmaas/common/v1"
	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
)

func (f *fixture) uploadDataset(t *testing.T, name string, data []byte) (*registryv1.UploadDatasetResponse, error) {
	t.Helper()
	stream, err := f.c.UploadDataset(t.Context())
	require.NoError(t, err)
	require.NoError(t, stream.Send(&registryv1.UploadDatasetRequest{Payload: &registryv1.UploadDatasetRequest_Header{
		Header: &registryv1.UploadDatasetHeader{Name: name, Filename: name + ".csv", Sha256: digest(data)}}}))
	for off := 0; off < len(data); off += 7 {
		if err := stream.Send(&registryv1.UploadDatasetRequest{Payload: &registryv1.UploadDatasetRequest_Chunk{Chunk: data[off:min(off+7, len(data))]}}); err != nil {
			break
		}
	}
	return stream.CloseAndRecv()
}

func TestDatasets(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	ctx := t.Context()
	csv := []byte("a,b,color,target\n1,2.5,red,0\n2,,blue,1\n3,4.5,red,NA\n")
	resp, err := f.uploadDataset(t, "toy", csv)
	require.NoError(t, err)
	require.Equal(t, int64(1), resp.Version.Version)
	st := resp.Version.Stats
	require.Equal(t, int64(3), st.Rows)
	require.Len(t, st.Columns, 4)
	require.Equal(t, "a", st.Columns[0].Name)
	require.Equal(t, commonv1.ValueKind_VALUE_KIND_NUMERIC, st.Columns[0].Kind)
	require.InDelta(t, 2.0, st.Columns[0].Mean, 1e-12)
	require.Equal(t, int64(1), st.Columns[1].Missing)
	require.Equal(t, commonv1.ValueKind_VALUE_KIND_CATEGORICAL, st.Columns[2].Kind)
	require.Equal(t, int64(1), st.Columns[3].Missing)

	resp2, err := f.uploadDataset(t, "toy", []byte("a,b,color,target\n5,6,green,1\n"))
	require.NoError(t, err)
	require.Equal(t, int64(2), resp2.Version.Version)

	d, err := f.c.GetDataset(ctx, &registryv1.GetDatasetRequest{Name: "toy"})
	require.NoError(t, err)
	require.Equal(t, int64(2), d.Dataset.Latest.Version)
	dv, err := f.c.GetDatasetVersion(ctx, &registryv1.GetDatasetVersionRequest{Dataset: "toy", Version: "1"})
	require.NoError(t, err)
	require.Equal(t, digest(csv), dv.Version.Sha256)

	stream, err := f.c.DownloadDataset(ctx, &registryv1.DownloadDatasetRequest{Dataset: "toy", Version: "1"})
	require.NoError(t, err)
	var got []byte
	for {
		msg, err := stream.Recv()
		if err != nil {
			break
		}
		got = append(got, msg.GetChunk()...)
	}
	require.Equal(t, csv, got)

	bad := []struct {
		name, data, msg string
	}{
		{"ragged", "a,b\n1,2\n3\n", "row 2 (line 3)"},
		{"utf8", "a,b\n1,\xff\xfe\n", "utf-8"},
		{"empty", "", "empty"},
		{"header only", "a,b\n", "empty"},
	}
	for _, tc := range bad {
		_, err := f.uploadDataset(t, "bad-"+tc.name[:4], []byte(tc.data))
		requireCode(t, err, codes.InvalidArgument, tc.msg)
	}
	list, err := f.c.ListDatasets(ctx, &registryv1.ListDatasetsRequest{})
	require.NoError(t, err)
	require.Len(t, list.Datasets, 1, "rejected uploads created no dataset")
	require.Equal(t, 2, countBlobs(t, f), "rejected uploads left no blob")

	_, err = f.c.DeleteDataset(ctx, &registryv1.DeleteDatasetRequest{Name: "toy"})
	require.NoError(t, err)
	_, err = f.c.GetDataset(ctx, &registryv1.GetDatasetRequest{Name: "toy"})
	requireCode(t, err, codes.NotFound, "toy")
}

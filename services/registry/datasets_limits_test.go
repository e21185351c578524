//go:build integration

package registry

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
)

// uploadBig sends data in chunks of 1 MiB.
func (f *fixture) uploadBig(t *testing.T, name string, data []byte) error {
	t.Helper()
	stream, err := f.c.UploadDataset(t.Context())
	require.NoError(t, err)
	require.NoError(t, stream.Send(&registryv1.UploadDatasetRequest{Payload: &registryv1.UploadDatasetRequest_Header{
		Header: &registryv1.UploadDatasetHeader{Name: name, Filename: name + ".csv", Sha256: digest(data)}}}))
	for off := 0; off < len(data); off += 1 << 20 {
		if err := stream.Send(&registryv1.UploadDatasetRequest{Payload: &registryv1.UploadDatasetRequest_Chunk{Chunk: data[off:min(off+1<<20, len(data))]}}); err != nil {
			break
		}
	}
	_, err = stream.CloseAndRecv()
	return err
}

// A dataset the control plane cannot hold, or with values that cannot be
// stored faithfully, is refused with a message for users, and nothing is
// written: too many columns and bad names or numbers are InvalidArgument
// naming the limit, the column and the row; statistics over etcd's request
// limit are ResourceExhausted, not etcd's text.
func TestDatasetUploadLimits(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)

	var wide bytes.Buffer
	for i := range 100_000 {
		fmt.Fprintf(&wide, "c%d,", i)
	}
	wide.WriteString("target\n")
	wide.WriteString(strings.Repeat("1,", 100_000) + "0\n")

	// 300 text columns of 20 distinct 500-byte values each: ~3 MB of top
	// categories, over what one etcd write may hold.
	var text bytes.Buffer
	for i := range 300 {
		fmt.Fprintf(&text, "t%d,", i)
	}
	text.WriteString("target\n")
	for r := range 20 {
		for range 300 {
			fmt.Fprintf(&text, "%d%s,", r, strings.Repeat("x", 500))
		}
		text.WriteString("0\n")
	}

	for name, tc := range map[string]struct {
		data []byte
		code codes.Code
		msg  string
	}{
		"wide":     {wide.Bytes(), codes.InvalidArgument, "too many columns: 100001, at most 2000"},
		"nul-name": {[]byte("a\x00,b\n1,2\n"), codes.InvalidArgument, "control character U+0000 in the column name"},
		"overflow": {[]byte("a,b\n1,2\n1e999,3\n"), codes.InvalidArgument, `row 2 (line 3), column "a": not a finite number (beyond ±1.8e308): "1e999"`},
	} {
		err := f.uploadBig(t, name, tc.data)
		requireCode(t, err, tc.code, tc.msg)
	}
	require.Zero(t, countBlobs(t, f), "rejected uploads left no blob")

	// Only etcd knows its limit: the blob is stored first (the collector
	// removes it), the write of the version is refused.
	err := f.uploadBig(t, "text", text.Bytes())
	requireCode(t, err, codes.ResourceExhausted, `dataset "text": its schema and statistics (301 columns) are too large to store`)
	require.NotContains(t, status.Convert(err).Message(), "etcd")
	list, err := f.c.ListDatasets(t.Context(), &registryv1.ListDatasetsRequest{})
	require.NoError(t, err)
	require.Empty(t, list.Datasets)
}

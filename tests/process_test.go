//go:build integration

package tests

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
	"github.com/bmaas/bmaas/tests/harness"
)

func dialRegistry(t *testing.T, addr string) registryv1.RegistryServiceClient {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	return registryv1.NewRegistryServiceClient(conn)
}

// pattern fills chunks deterministically without holding the whole artifact.
type pattern struct{ r *rand.Rand }

func (p pattern) fill(b []byte) {
	for i := 0; i+8 <= len(b); i += 8 {
		v := p.r.Uint64()
		for j := range 8 {
			b[i+j] = byte(v >> (8 * j))
		}
	}
}

// streamUpload uploads size bytes from a seeded pattern in 1 MiB chunks;
// after each chunk it calls onChunk with the bytes sent so far.
func streamUpload(ctx context.Context, c registryv1.RegistryServiceClient, model string, size int64, seed uint64, onChunk func(int64)) (*registryv1.ModelVersion, string, error) {
	h := sha256.New()
	p := pattern{rand.New(rand.NewPCG(seed, 7))}
	buf := make([]byte, 1<<20)
	for sent := int64(0); sent < size; sent += int64(len(buf)) {
		p.fill(buf)
		h.Write(buf)
	}
	digest := hex.EncodeToString(h.Sum(nil))
	stream, err := c.CreateModelVersion(ctx)
	if err != nil {
		return nil, "", err
	}
	if err := stream.Send(&registryv1.CreateModelVersionRequest{Payload: &registryv1.CreateModelVersionRequest_Header{
		Header: &registryv1.CreateModelVersionHeader{Model: model, Sha256: digest, SizeBytes: size}}}); err != nil {
		return nil, "", err
	}
	p = pattern{rand.New(rand.NewPCG(seed, 7))}
	for sent := int64(0); sent < size; sent += int64(len(buf)) {
		p.fill(buf)
		if err := stream.Send(&registryv1.CreateModelVersionRequest{Payload: &registryv1.CreateModelVersionRequest_Chunk{Chunk: buf}}); err != nil {
			break
		}
		if onChunk != nil {
			onChunk(sent + int64(len(buf)))
		}
	}
	resp, err := stream.CloseAndRecv()
	if err != nil {
		return nil, digest, err
	}
	return resp.Version, digest, nil
}

func downloadDigest(t *testing.T, c registryv1.RegistryServiceClient, model, ref string) string {
	t.Helper()
	stream, err := c.DownloadModelVersion(t.Context(), &registryv1.DownloadModelVersionRequest{Model: model, Version: ref})
	require.NoError(t, err)
	h := sha256.New()
	for {
		msg, err := stream.Recv()
		if err == io.EOF {
			return hex.EncodeToString(h.Sum(nil))
		}
		require.NoError(t, err)
		h.Write(msg.GetChunk())
	}
}

func TestKill9DuringUpload(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := harness.StartProcess(t, "up", "--data-dir", dir, "--embedded.fast-election")
	c := dialRegistry(t, p.GRPC)
	ctx := t.Context()
	_, err := c.CreateModel(ctx, &registryv1.CreateModelRequest{Model: &registryv1.Model{Name: "crash"}})
	require.NoError(t, err)
	v1, d1, err := streamUpload(ctx, c, "crash", 3<<20, 1, nil)
	require.NoError(t, err)

	// Kill the server once 16 MiB of a 64 MiB upload went through.
	_, _, err = streamUpload(ctx, c, "crash", 64<<20, 2, func(sent int64) {
		if sent == 16<<20 {
			p.Kill()
		}
	})
	require.Error(t, err)

	p2 := harness.StartProcess(t, "up", "--data-dir", dir, "--embedded.fast-election")
	c2 := dialRegistry(t, p2.GRPC)
	list, err := c2.ListModelVersions(ctx, &registryv1.ListModelVersionsRequest{Model: "crash"})
	require.NoError(t, err)
	require.Len(t, list.Versions, 1, "the interrupted upload left no version")
	require.Equal(t, v1.Version, list.Versions[0].Version)
	require.Equal(t, registryv1.VersionStatus_VERSION_STATUS_READY, list.Versions[0].Status)
	// Every version's blob exists and is intact.
	for _, v := range list.Versions {
		require.Equal(t, v.Sha256, downloadDigest(t, c2, "crash", itoa(v.Version)))
	}
	require.Equal(t, d1, downloadDigest(t, c2, "crash", "latest"))
	staged, err := os.ReadDir(filepath.Join(dir, "blobs", "tmp"))
	require.NoError(t, err)
	require.Empty(t, staged, "staged files of the interrupted upload are removed at start")

	v2, _, err := streamUpload(ctx, c2, "crash", 1<<20, 3, nil)
	require.NoError(t, err)
	require.Equal(t, int64(2), v2.Version)
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// TestLargeUploadIsStreamed uploads 200 MB and checks the server's resident
// memory stays within 64 MB of where it started, and that the download
// has the same sha256.
func TestLargeUploadIsStreamed(t *testing.T) {
	t.Parallel()
	p := harness.StartProcess(t, "up", "--data-dir", t.TempDir(), "--embedded.fast-election")
	c := dialRegistry(t, p.GRPC)
	ctx := t.Context()
	_, err := c.CreateModel(ctx, &registryv1.CreateModelRequest{Model: &registryv1.Model{Name: "big"}})
	require.NoError(t, err)
	_, _, err = streamUpload(ctx, c, "big", 8<<20, 9, nil) // warm up buffers and pools
	require.NoError(t, err)

	base := p.RSS(t)
	var peak atomic.Int64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			if r := p.RSS(t); r > peak.Load() {
				peak.Store(r)
			}
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	}()
	v, digest, err := streamUpload(ctx, c, "big", 200_000_000/(1<<20)*(1<<20), 10, nil)
	close(stop)
	<-done
	require.NoError(t, err)
	growth := peak.Load() - base
	t.Logf("resident memory: base %d MiB, peak %d MiB, growth %d MiB", base>>20, peak.Load()>>20, growth>>20)
	require.Less(t, growth, int64(64<<20), "upload must be streamed, not buffered")
	require.Equal(t, digest, downloadDigest(t, c, "big", itoa(v.Version)))
}

func TestInterruptShutsDownCleanly(t *testing.T) {
	t.Parallel()
	p := harness.StartProcess(t, "up", "--data-dir", t.TempDir(), "--embedded.fast-election")
	start := time.Now()
	require.NoError(t, p.Interrupt(), "exit status after Ctrl-C:\n%s", p.Output())
	t.Logf("shutdown took %s", time.Since(start))
	require.Contains(t, p.Output(), "bmaas is ready")
}

// Package registry benchmarks the registry against raw etcd on the same
// embedded etcd, in the same run, and measures artifact upload and
// download throughput over loopback gRPC.
//
//	go test -run '^$' -bench . ./bench/registry/
package registry

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"sync/atomic"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/protobuf/proto"

	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
	"github.com/bmaas/bmaas/tests/harness"
)

const models = 100

func setup(b *testing.B) (*harness.Cluster, *clientv3.Client) {
	b.Helper()
	c := harness.Start(b)
	cli := c.EtcdClient(b)
	ctx := context.Background()
	for i := range models {
		name := fmt.Sprintf("model-%03d", i)
		resp, err := c.Registry.CreateModel(ctx, &registryv1.CreateModelRequest{Model: &registryv1.Model{
			Name: name, Description: "a model used by the benchmark", Labels: map[string]string{"team": "bench"}}})
		if err != nil {
			b.Fatal(err)
		}
		raw, err := proto.Marshal(resp.GetModel())
		if err != nil {
			b.Fatal(err)
		}
		if _, err := cli.Put(ctx, "/bench/raw/"+name, string(raw)); err != nil {
			b.Fatal(err)
		}
	}
	return c, cli
}

// Reads: GetModel through the registry's gRPC API vs a raw etcd Get of
// the model's encoding.
func BenchmarkReads(b *testing.B) {
	c, cli := setup(b)
	b.Run("raw-etcd-get", func(b *testing.B) {
		var n atomic.Int64
		b.SetParallelism(16)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				i := n.Add(1) % models
				if _, err := cli.Get(context.Background(), fmt.Sprintf("/bench/raw/model-%03d", i)); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	b.Run("registry-get-model", func(b *testing.B) {
		var n atomic.Int64
		b.SetParallelism(16)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				i := n.Add(1) % models
				if _, err := c.Registry.GetModel(context.Background(), &registryv1.GetModelRequest{Name: fmt.Sprintf("model-%03d", i)}); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

// Writes: UpdateModel (read, revision-checked transaction) vs a raw Put.
func BenchmarkWrites(b *testing.B) {
	c, cli := setup(b)
	b.Run("raw-etcd-put", func(b *testing.B) {
		var n atomic.Int64
		b.SetParallelism(16)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				i := n.Add(1)
				if _, err := cli.Put(context.Background(), fmt.Sprintf("/bench/raw/model-%03d", i%models), fmt.Sprintf("description %d", i)); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	b.Run("registry-update-model", func(b *testing.B) {
		var n atomic.Int64
		b.SetParallelism(16)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				i := n.Add(1)
				_, err := c.Registry.UpdateModel(context.Background(), &registryv1.UpdateModelRequest{
					Model: &registryv1.Model{Name: fmt.Sprintf("model-%03d", i%models), Description: fmt.Sprintf("description %d", i)}})
				if err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

// Upload and download of a 64 MiB artifact in 1 MiB chunks.
func BenchmarkArtifact(b *testing.B) {
	c := harness.Start(b)
	ctx := context.Background()
	if _, err := c.Registry.CreateModel(ctx, &registryv1.CreateModelRequest{Model: &registryv1.Model{Name: "big"}}); err != nil {
		b.Fatal(err)
	}
	const size = 64 << 20
	chunk := make([]byte, 1<<20)
	for i := range chunk {
		chunk[i] = byte(i * 31)
	}
	var last *registryv1.ModelVersion
	b.Run("upload", func(b *testing.B) {
		b.SetBytes(size)
		for i := 0; b.Loop(); i++ {
			// Distinct content each time so nothing is deduplicated; the
			// digest is computed while sending and goes in the trailer.
			marker := []byte(fmt.Sprintf("%08d", i))
			copy(chunk, marker)
			h := sha256.New()
			stream, err := c.Registry.CreateModelVersion(ctx)
			if err != nil {
				b.Fatal(err)
			}
			_ = stream.Send(&registryv1.CreateModelVersionRequest{Payload: &registryv1.CreateModelVersionRequest_Header{
				Header: &registryv1.CreateModelVersionHeader{Model: "big", SizeBytes: size}}})
			for range size / len(chunk) {
				h.Write(chunk)
				_ = stream.Send(&registryv1.CreateModelVersionRequest{Payload: &registryv1.CreateModelVersionRequest_Chunk{Chunk: chunk}})
			}
			_ = stream.Send(&registryv1.CreateModelVersionRequest{Payload: &registryv1.CreateModelVersionRequest_Trailer{
				Trailer: &registryv1.UploadTrailer{Sha256: hex.EncodeToString(h.Sum(nil))}}})
			resp, err := stream.CloseAndRecv()
			if err != nil {
				b.Fatal(err)
			}
			last = resp.Version
		}
	})
	b.Run("download", func(b *testing.B) {
		b.SetBytes(size)
		for b.Loop() {
			stream, err := c.Registry.DownloadModelVersion(ctx, &registryv1.DownloadModelVersionRequest{Model: "big", Version: fmt.Sprint(last.Version)})
			if err != nil {
				b.Fatal(err)
			}
			for {
				if _, err := stream.Recv(); err == io.EOF {
					break
				} else if err != nil {
					b.Fatal(err)
				}
			}
		}
	})
}

// Package modelcache benchmarks a replica's start on a node whose model
// cache lacks the version's artifact (it downloads) against one whose
// cache holds it (a hit), with the registry's download throughput over
// loopback measured in the same run as the reference.
//
//	go test -run '^$' -bench . -benchtime 1x ./bench/modelcache/
//	BMAAS_BENCH_ARTIFACT_MIB=1024 go test -run '^$' -bench . -benchtime 1x ./bench/modelcache/
package modelcache

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protowire"

	gatewayv1 "github.com/bmaas/bmaas/api/bmaas/gateway/v1"
	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
	schedulerv1 "github.com/bmaas/bmaas/api/bmaas/scheduler/v1"
	"github.com/bmaas/bmaas/internal/app"
	"github.com/bmaas/bmaas/tests/harness"
)

// artifactMiB is the artifact's size: BMAAS_BENCH_ARTIFACT_MIB, default 256.
func artifactMiB(b *testing.B) int64 {
	v := os.Getenv("BMAAS_BENCH_ARTIFACT_MIB")
	if v == "" {
		return 256
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n <= 0 {
		b.Fatalf("BMAAS_BENCH_ARTIFACT_MIB=%q: want a positive number of MiB", v)
	}
	return n
}

// BenchmarkReplicaStart: a native model padded to the artifact's size
// (an unknown protobuf field the loader skips) is deployed twice on the
// cluster's one node. The first replica downloads the artifact into the
// node's cache, the second finds it there. Each start is timed from the
// deployment's creation to its ready replica; the cache's metrics say
// how long the downloads took and how many bytes they wrote.
func BenchmarkReplicaStart(b *testing.B) {
	size := artifactMiB(b) << 20
	c := harness.Start(b, func(cfg *app.Config) {
		cfg.Gateway.ReconcileInterval = 100 * time.Millisecond
		cfg.TrainerAgent.CPUMillis = 64_000
		cfg.TrainerAgent.MemoryBytes = 64 << 30
	})
	ctx := context.Background()
	trainIris(b, c)
	v1, art := download(b, c, "1")
	padded := pad(art, size)
	uploadVersion(b, c, v1, padded)
	padded = nil

	// The reference: the registry's download over loopback, same run,
	// received and dropped.
	t0 := time.Now()
	if n := receive(b, c, "2", io.Discard); n != size {
		b.Fatalf("downloaded %d bytes, want %d", n, size)
	}
	regSecs := time.Since(t0).Seconds()
	// What the cache must do besides: the same download hashed and
	// written to a file, in this process.
	t0 = time.Now()
	f, err := os.Create(b.TempDir() + "/artifact")
	if err != nil {
		b.Fatal(err)
	}
	hw := sha256.New()
	receive(b, c, "2", io.MultiWriter(f, hw))
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	fileSecs := time.Since(t0).Seconds()

	dc := gatewayv1.NewDeploymentServiceClient(c.Conn)
	start := func(name, model string) time.Duration {
		t0 := time.Now()
		if _, err := dc.CreateDeployment(ctx, &gatewayv1.CreateDeploymentRequest{Deployment: &gatewayv1.Deployment{
			Name: name, Model: model, MinReplicas: 1, MaxReplicas: 1,
			// The native loader holds the file and its decoding at once.
			Resources: &schedulerv1.Resources{CpuMillis: 2000, MemoryBytes: 3*size + 1<<30}}}); err != nil {
			b.Fatal(err)
		}
		for {
			d, err := dc.GetDeployment(ctx, &gatewayv1.GetDeploymentRequest{Name: name})
			if err == nil && d.Deployment.GetStatus().GetReadyReplicas() == 1 {
				return time.Since(t0)
			}
			if time.Since(t0) > 10*time.Minute {
				b.Fatalf("%s: no ready replica within 10 minutes: %s", name, d.GetDeployment().GetStatus().GetMessage())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	// What a start costs besides the artifact: the unpadded version.
	small := start("small", "iris@1")
	secs0, bytes0 := metric(b, c, "bmaas_model_cache_download_seconds_total"), metric(b, c, "bmaas_model_cache_download_bytes_total")
	first := start("first", "iris@2")
	secs1, bytes1 := metric(b, c, "bmaas_model_cache_download_seconds_total"), metric(b, c, "bmaas_model_cache_download_bytes_total")
	misses1, hits1 := metric(b, c, "bmaas_model_cache_misses_total"), metric(b, c, "bmaas_model_cache_hits_total")
	second := start("second", "iris@2")
	secs2, bytes2 := metric(b, c, "bmaas_model_cache_download_seconds_total"), metric(b, c, "bmaas_model_cache_download_bytes_total")
	misses2, hits2 := metric(b, c, "bmaas_model_cache_misses_total"), metric(b, c, "bmaas_model_cache_hits_total")

	dlSecs, dlBytes := secs1-secs0, bytes1-bytes0
	b.ReportMetric(float64(size)/1e6/regSecs, "registry-MB/s")
	b.ReportMetric(float64(size)/1e6/fileSecs, "hashed-file-MB/s")
	b.ReportMetric(dlBytes/1e6/dlSecs, "cache-download-MB/s")
	b.ReportMetric(dlBytes/dlSecs/(float64(size)/regSecs), "download-ratio")
	b.ReportMetric(small.Seconds(), "small-start-s")
	b.ReportMetric(first.Seconds(), "first-start-s")
	b.ReportMetric(dlSecs, "first-download-s")
	b.ReportMetric(second.Seconds(), "second-start-s")
	b.ReportMetric(secs2-secs1, "second-download-s")
	b.Logf("artifact %d MiB: registry download %.2fs (hashed into a file %.2fs); small version's start %s; first start %s (download %.2fs of %.0f bytes, misses +%.0f); "+
		"second start %s (download %.2fs of %.0f bytes, misses +%.0f, hits +%.0f)",
		size>>20, regSecs, fileSecs, small.Round(time.Millisecond), first.Round(time.Millisecond), dlSecs, dlBytes, misses1-1,
		second.Round(time.Millisecond), secs2-secs1, bytes2-bytes1, misses2-misses1, hits2-hits1)
	_ = hits1
}

// trainIris trains a logistic regression of iris as version 1 of iris.
func trainIris(b *testing.B, c *harness.Cluster) {
	ctx := context.Background()
	data, err := os.ReadFile("../../examples/datasets/iris.csv")
	if err != nil {
		b.Fatal(err)
	}
	sum := sha256.Sum256(data)
	up, err := c.Registry.UploadDataset(ctx)
	if err != nil {
		b.Fatal(err)
	}
	_ = up.Send(&registryv1.UploadDatasetRequest{Payload: &registryv1.UploadDatasetRequest_Header{
		Header: &registryv1.UploadDatasetHeader{Name: "iris", Sha256: hex.EncodeToString(sum[:])}}})
	_ = up.Send(&registryv1.UploadDatasetRequest{Payload: &registryv1.UploadDatasetRequest_Chunk{Chunk: data}})
	if _, err := up.CloseAndRecv(); err != nil {
		b.Fatal(err)
	}
	if _, err := c.Registry.CreateModel(ctx, &registryv1.CreateModelRequest{Model: &registryv1.Model{Name: "iris"}}); err != nil {
		b.Fatal(err)
	}
	sc := schedulerv1.NewSchedulerServiceClient(c.Conn)
	sub, err := sc.SubmitJob(ctx, &schedulerv1.SubmitJobRequest{Spec: &schedulerv1.JobSpec{Model: "iris",
		Runtime: &schedulerv1.JobSpec_Builtin{Builtin: &schedulerv1.BuiltinRuntime{Algorithm: "logistic", Dataset: "iris",
			TargetColumn: "target", Seed: 1}}}})
	if err != nil {
		b.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		j, err := sc.GetJob(ctx, &schedulerv1.GetJobRequest{Id: sub.Job.Id})
		switch {
		case err != nil || j.Job.State == schedulerv1.JobState_JOB_STATE_FAILED:
			b.Fatalf("training: %v %s", err, j.GetJob().GetReason())
		case j.Job.State == schedulerv1.JobState_JOB_STATE_SUCCEEDED:
			return
		case time.Now().After(deadline):
			b.Fatal("training: not within 2 minutes")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// download returns a version of iris and its artifact.
func download(b *testing.B, c *harness.Cluster, ref string) (*registryv1.ModelVersion, []byte) {
	var buf bytes.Buffer
	var v *registryv1.ModelVersion
	recv(b, c, ref, func(hv *registryv1.ModelVersion) { v = hv }, &buf)
	return v, buf.Bytes()
}

// receive writes a version's artifact to w and returns its size.
func receive(b *testing.B, c *harness.Cluster, ref string, w io.Writer) int64 {
	return recv(b, c, ref, func(*registryv1.ModelVersion) {}, w)
}

func recv(b *testing.B, c *harness.Cluster, ref string, head func(*registryv1.ModelVersion), w io.Writer) int64 {
	st, err := c.Registry.DownloadModelVersion(context.Background(), &registryv1.DownloadModelVersionRequest{Model: "iris", Version: ref})
	if err != nil {
		b.Fatal(err)
	}
	var n int64
	for {
		m, err := st.Recv()
		if err == io.EOF {
			return n
		}
		if err != nil {
			b.Fatal(err)
		}
		if m.GetVersion() != nil {
			head(m.GetVersion())
		}
		k, _ := w.Write(m.GetChunk())
		n += int64(k)
	}
}

// pad grows a native artifact to size bytes with a field its decoder
// skips, of seeded random bytes (nothing along the way compresses them).
func pad(art []byte, size int64) []byte {
	const field = 1 << 20
	n := size - int64(len(art)) - int64(protowire.SizeTag(field))
	n -= int64(protowire.SizeVarint(uint64(n)))
	out := make([]byte, 0, size)
	out = append(out, art...)
	out = protowire.AppendTag(out, field, protowire.BytesType)
	out = protowire.AppendVarint(out, uint64(n))
	r := rand.New(rand.NewPCG(1, 2))
	block := make([]byte, 1<<20)
	for i := 0; i+8 <= len(block); i += 8 {
		u := r.Uint64()
		for k := range 8 {
			block[i+k] = byte(u >> (8 * k))
		}
	}
	for int64(len(out)) < size {
		out = append(out, block[:min(int64(len(block)), size-int64(len(out)))]...)
	}
	return out
}

// uploadVersion registers art as version 2 of iris, with version 1's
// format and signature.
func uploadVersion(b *testing.B, c *harness.Cluster, v1 *registryv1.ModelVersion, art []byte) {
	sum := sha256.Sum256(art)
	st, err := c.Registry.CreateModelVersion(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	if err := st.Send(&registryv1.CreateModelVersionRequest{Payload: &registryv1.CreateModelVersionRequest_Header{
		Header: &registryv1.CreateModelVersionHeader{Model: "iris", Sha256: hex.EncodeToString(sum[:]), SizeBytes: int64(len(art)),
			Spec: &registryv1.ModelVersionSpec{Format: v1.Format, Signature: v1.Signature, Description: "iris, padded"}}}}); err != nil {
		b.Fatal(err)
	}
	for off := 0; off < len(art); off += 1 << 20 {
		if err := st.Send(&registryv1.CreateModelVersionRequest{Payload: &registryv1.CreateModelVersionRequest_Chunk{
			Chunk: art[off:min(off+1<<20, len(art))]}}); err != nil {
			break
		}
	}
	if _, err := st.CloseAndRecv(); err != nil {
		b.Fatal(err)
	}
}

// metric sums a metric's samples on the cluster's /metrics.
func metric(b *testing.B, c *harness.Cluster, name string) float64 {
	req, err := http.NewRequest("GET", c.HTTP+"/metrics", nil)
	if err != nil {
		b.Fatal(err)
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	resp, err := c.HTTPClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		b.Fatal(err)
	}
	var sum float64
	for line := range strings.SplitSeq(string(body), "\n") {
		if rest, ok := strings.CutPrefix(line, name+"{"); ok {
			_, v, _ := strings.Cut(rest, "} ")
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				b.Fatal(line)
			}
			sum += f
		}
	}
	return sum
}

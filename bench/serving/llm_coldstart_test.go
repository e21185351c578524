package serving

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	gatewayv1 "github.com/bmaas/bmaas/api/bmaas/gateway/v1"
	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
	schedulerv1 "github.com/bmaas/bmaas/api/bmaas/scheduler/v1"
	"github.com/bmaas/bmaas/internal/app"
	"github.com/bmaas/bmaas/tests/harness"
)

// BenchmarkLLMColdStart measures the first token of a streamed chat
// request that arrives at a deployment scaled to zero, in bmaas up with
// its trainer agent: the request is held while the agent fetches the
// version (the node's model cache), starts an llm-torch replica and its
// probe passes. The first time on the node the version is downloaded;
// the second time (after the deployment went back to zero) the cache
// has it. The versions are random GPTs of 8 layers, 512 wide (about 95
// MB each as an archive); the measured one is new to the node.
//
//	go test -run '^$' -bench LLMColdStart -benchtime 1x ./bench/serving/
func BenchmarkLLMColdStart(b *testing.B) {
	if exec.Command(python, "-c", "import torch").Run() != nil {
		b.Skip(python + " lacks torch (Debian's python3-torch)")
	}
	if _, err := exec.LookPath("bwrap"); err != nil {
		b.Skip("no bwrap")
	}
	c := harness.Start(b, func(cfg *app.Config) {
		cfg.Gateway.ReconcileInterval = 100 * time.Millisecond
		cfg.Gateway.ColdStartTimeout = 5 * time.Minute
	}, roomy)
	ctx := context.Background()
	if _, err := c.Registry.CreateModel(ctx, &registryv1.CreateModelRequest{Model: &registryv1.Model{Name: "big-gpt"}}); err != nil {
		b.Fatal(err)
	}
	size := uploadGPT(b, c, 1)
	workdir, _ := filepath.Abs("../../examples/runtimes/llm-torch")
	if _, err := gatewayv1.NewRuntimeServiceClient(c.Conn).CreateRuntime(ctx, &gatewayv1.CreateRuntimeRequest{Runtime: &gatewayv1.Runtime{
		Name: "llm-torch", Formats: []*gatewayv1.RuntimeFormat{{Name: "pytorch"}},
		Server: &schedulerv1.ProcessServer{Command: python, Args: []string{"server.py"}, Workdir: workdir, Protocols: []string{"openai"},
			ReadinessProbe: &schedulerv1.ReadinessProbe{HttpPath: "/health", Period: durationpb.New(100 * time.Millisecond),
				StartupTimeout: durationpb.New(2 * time.Minute)}}}}); err != nil {
		b.Fatal(err)
	}
	dc := gatewayv1.NewDeploymentServiceClient(c.Conn)
	if _, err := dc.CreateDeployment(ctx, &gatewayv1.CreateDeploymentRequest{Deployment: &gatewayv1.Deployment{
		Name: "big-gpt", Model: "big-gpt@1", MinReplicas: 0, MaxReplicas: 1, ScaleToZeroSeconds: 1,
		Resources: &schedulerv1.Resources{CpuMillis: 500, MemoryBytes: 2 << 30}}}); err != nil {
		b.Fatal(err)
	}
	idle := func() {
		poll(b, "idle at zero", func() bool {
			d, err := dc.GetDeployment(ctx, &gatewayv1.GetDeploymentRequest{Name: "big-gpt"})
			return err == nil && d.Deployment.GetState() == "IDLE" && len(d.Deployment.GetStatus().GetReplicas()) == 0
		})
	}
	// The deployment's first replica started on creation and fetched
	// version 1; version 2 is new to the node.
	idle()
	uploadGPT(b, c, 2)
	if _, err := dc.UpdateDeployment(ctx, &gatewayv1.UpdateDeploymentRequest{Deployment: &gatewayv1.Deployment{Name: "big-gpt",
		Model: "big-gpt@2"}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"model"}}}); err != nil {
		b.Fatal(err)
	}
	for _, run := range []string{"first", "second"} {
		b.Run(run, func(b *testing.B) {
			idle()
			bytes0 := promValue(b, c.HTTP, "bmaas_model_cache_download_bytes_total")
			start := time.Now()
			s, err := streamChat(c.HTTP+"/openai/v1", c.Token, "big-gpt", "", "Hello", 4)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(s.ttft.Seconds(), "first-token-s")
			b.ReportMetric(time.Since(start).Seconds(), "answer-s")
			b.ReportMetric((promValue(b, c.HTTP, "bmaas_model_cache_download_bytes_total")-bytes0)/1e6, "downloaded-MB")
		})
	}
	b.Logf("archive %.1f MB", float64(size)/1e6)
}

// uploadGPT registers a random GPT (seeded) as a PyTorch archive version
// of big-gpt; it returns the archive's size.
func uploadGPT(b *testing.B, c *harness.Cluster, seed int) int {
	dir := b.TempDir()
	if out, err := exec.Command(python, "-c", `
import sys, torch
sys.path.insert(0, "../../examples/llm")
import gpt
torch.manual_seed(int(sys.argv[2]))
gpt.save(gpt.GPT(gpt.Config(block_size=512, n_layer=8, n_head=8, n_embd=512)), sys.argv[1])
`, dir, strconv.Itoa(seed)).CombinedOutput(); err != nil {
		b.Fatalf("a model: %v\n%s", err, out)
	}
	archive := tarGz(b, dir)
	uploadVersion(b, c, "big-gpt", registryv1.ModelFormat_MODEL_FORMAT_PYTORCH, "model.tar.gz", archive)
	return len(archive)
}

// tarGz packs a directory's files as a gzipped tar.
func tarGz(b *testing.B, dir string) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	ents, err := os.ReadDir(dir)
	if err != nil {
		b.Fatal(err)
	}
	for _, e := range ents {
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			b.Fatal(err)
		}
		if err := tw.WriteHeader(&tar.Header{Name: e.Name(), Mode: 0o644, Size: int64(len(data))}); err != nil {
			b.Fatal(err)
		}
		_, _ = tw.Write(data)
	}
	_ = tw.Close()
	_ = zw.Close()
	return buf.Bytes()
}

// promValue sums the samples of a metric of the process's /metrics,
// whatever their labels.
func promValue(b *testing.B, base, name string) float64 {
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	total := 0.0
	for _, line := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(line, name+" ") || strings.HasPrefix(line, name+"{") {
			x, _ := strconv.ParseFloat(line[strings.LastIndex(line, " ")+1:], 64)
			total += x
		}
	}
	return total
}

//go:build integration

package tests

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	gatewayv1 "github.com/bmaas/bmaas/api/bmaas/gateway/v1"
	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
	schedulerv1 "github.com/bmaas/bmaas/api/bmaas/scheduler/v1"
	"github.com/bmaas/bmaas/api/inference"
	"github.com/bmaas/bmaas/internal/app"
	"github.com/bmaas/bmaas/tests/harness"
)

// TestAliasMoveAtPacedLoad moves the followed alias while a ticker sends
// up to 500 requests a second (the rate reached is logged, not asserted:
// a loaded machine drops ticks): no request fails, and the replicas end on the
// new version.
func TestAliasMoveAtPacedLoad(t *testing.T) {
	t.Parallel()
	c := harness.Start(t, withFastGateway())
	ctx := t.Context()
	uploadDatasetFile(t, c.Registry, "iris", "iris.csv")
	_, err := c.Registry.CreateModel(ctx, &registryv1.CreateModelRequest{Model: &registryv1.Model{Name: "iris"}})
	require.NoError(t, err)
	trainVersion(t, c, "iris", "iris", "logistic")
	v2 := trainVersion(t, c, "iris", "iris", "mlp")
	setAlias(t, c, "iris", "production", "1")
	dc := gatewayv1.NewDeploymentServiceClient(c.Conn)
	_, err = dc.CreateDeployment(ctx, &gatewayv1.CreateDeploymentRequest{Deployment: &gatewayv1.Deployment{
		Model: "iris@production", MinReplicas: 2, MaxReplicas: 2,
		// Small replicas, so the surge fits on the one agent.
		Resources: &schedulerv1.Resources{CpuMillis: 100, MemoryBytes: 64 << 20}}})
	require.NoError(t, err)
	eventually(t, time.Minute, "deployment ready", func() bool {
		d, err := dc.GetDeployment(ctx, &gatewayv1.GetDeploymentRequest{Name: "iris"})
		return err == nil && d.Deployment.GetStatus().GetReadyReplicas() == 2
	})

	ic := inference.NewGRPCInferenceServiceClient(c.Conn)
	req := &inference.ModelInferRequest{ModelName: "iris", Inputs: []*inference.ModelInferRequest_InferInputTensor{{
		Name: "input", Datatype: "FP64", Shape: []int64{1, 4}, Contents: &inference.InferTensorContents{Fp64Contents: []float64{5.1, 3.5, 1.4, 0.2}}}}}
	// The load runs at least 6 s and until a second after the rollout
	// ended, at most 30 s.
	const rate, minDur, maxDur = 500, 6 * time.Second, 30 * time.Second
	onV2 := func() bool {
		d, err := dc.GetDeployment(ctx, &gatewayv1.GetDeploymentRequest{Name: "iris"})
		if err != nil || d.Deployment.GetStatus().GetVersion() != v2 || d.Deployment.State != "READY" || len(d.Deployment.Status.Replicas) == 0 {
			return false
		}
		for _, r := range d.Deployment.Status.Replicas {
			if r.Version != v2 {
				return false
			}
		}
		return true
	}
	var sent, failed, onNew atomic.Int64
	var rolledAt atomic.Int64 // unix nanos
	var wg sync.WaitGroup
	tick := time.NewTicker(time.Second / rate)
	defer tick.Stop()
	start := time.Now()
	var moved time.Time
	for now := range tick.C {
		el := now.Sub(start)
		if r := rolledAt.Load(); el >= maxDur || (r != 0 && el >= minDur && now.Sub(time.Unix(0, r)) >= time.Second) {
			break
		}
		if moved.IsZero() && el >= time.Second {
			setAlias(t, c, "iris", "production", "2")
			moved = time.Now()
			wg.Add(1)
			go func() {
				defer wg.Done()
				for rolledAt.Load() == 0 && time.Since(start) < maxDur {
					if onV2() {
						rolledAt.Store(time.Now().UnixNano())
						return
					}
					time.Sleep(50 * time.Millisecond)
				}
			}()
		}
		sent.Add(1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := ic.ModelInfer(ctx, req)
			switch {
			case err != nil:
				if failed.Add(1) <= 5 {
					t.Logf("request failed: %v", err)
				}
			case resp.ModelVersion == "2":
				onNew.Add(1)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	require.NotZero(t, rolledAt.Load(), "the replicas did not roll to version 2 within %s", maxDur)
	t.Logf("%d requests in %s (%.0f/s); rollout took %s after the alias moved; %d answered by version 2, %d failed",
		sent.Load(), elapsed.Round(time.Millisecond), float64(sent.Load())/elapsed.Seconds(),
		time.Unix(0, rolledAt.Load()).Sub(moved).Round(time.Millisecond), onNew.Load(), failed.Load())
	require.Zero(t, failed.Load(), "failed requests while the alias moved")
	require.Positive(t, onNew.Load())
	require.True(t, onV2(), "the replicas end on version 2")
}

// TestONNXDeploymentMatchesPyTorch: the ONNX export of the PyTorch example,
// imported as a version and deployed, answers within 1e-5 of PyTorch.
func TestONNXDeploymentMatchesPyTorch(t *testing.T) {
	t.Parallel()
	if err := exec.Command(python, "-c", "import torch, onnx").Run(); err != nil {
		t.Skip("python3 with torch and onnx is not available")
	}
	data, out := t.TempDir(), t.TempDir()
	csv, err := os.ReadFile("../examples/datasets/iris.csv")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(data, "iris.csv"), csv, 0o644))
	example, err := filepath.Abs("../examples/pytorch/train.py")
	require.NoError(t, err)
	b, err := exec.CommandContext(t.Context(), python, "../pkg/serving/testdata/torch_outputs.py", example, data, out).Output()
	require.NoError(t, err)
	var ref struct {
		ONNX string      `json:"onnx"`
		X    [][]float64 `json:"x"`
		Y    [][]float64 `json:"y"`
	}
	require.NoError(t, json.Unmarshal(b, &ref))

	// The export is registered from the server's disk, below an import root.
	c := harness.Start(t, withFastGateway(), func(cfg *app.Config) { cfg.Registry.ImportRoots = []string{out} })
	ctx := t.Context()
	_, err = c.Registry.CreateModel(ctx, &registryv1.CreateModelRequest{Model: &registryv1.Model{Name: "torch-iris"}})
	require.NoError(t, err)
	_, err = c.Registry.ImportModelVersion(ctx, &registryv1.ImportModelVersionRequest{Model: "torch-iris", SourcePath: ref.ONNX,
		Spec: &registryv1.ModelVersionSpec{Format: registryv1.ModelFormat_MODEL_FORMAT_ONNX}})
	require.NoError(t, err)
	dc := gatewayv1.NewDeploymentServiceClient(c.Conn)
	_, err = dc.CreateDeployment(ctx, &gatewayv1.CreateDeploymentRequest{Deployment: &gatewayv1.Deployment{
		Model: "torch-iris@1", MinReplicas: 1, MaxReplicas: 1}})
	require.NoError(t, err)
	eventually(t, time.Minute, "deployment ready", func() bool {
		code, _ := httpDo(t, c, "GET", "/v2/models/torch-iris/ready", nil)
		return code == 200
	})

	ic := inference.NewGRPCInferenceServiceClient(c.Conn)
	md, err := ic.ModelMetadata(ctx, &inference.ModelMetadataRequest{Name: "torch-iris"})
	require.NoError(t, err)
	require.Equal(t, "onnxruntime_onnx", md.Platform)
	cols := len(ref.X[0])
	x := make([]float32, 0, len(ref.X)*cols)
	for _, r := range ref.X {
		for _, v := range r {
			x = append(x, float32(v))
		}
	}
	resp, err := ic.ModelInfer(ctx, &inference.ModelInferRequest{ModelName: "torch-iris",
		Inputs: []*inference.ModelInferRequest_InferInputTensor{{Name: md.Inputs[0].Name, Datatype: "FP32",
			Shape: []int64{int64(len(ref.X)), int64(cols)}, Contents: &inference.InferTensorContents{Fp32Contents: x}}}})
	require.NoError(t, err)
	got := resp.Outputs[0].Contents.Fp32Contents
	k := len(ref.Y[0])
	require.Equal(t, []int64{int64(len(ref.X)), int64(k)}, resp.Outputs[0].Shape)
	for i, row := range ref.Y {
		for j, v := range row {
			require.InDelta(t, v, float64(got[i*k+j]), 1e-5, "row %d output %d", i, j)
		}
	}
}

package serving

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	gatewayv1 "github.com/bmaas/bmaas/api/bmaas/gateway/v1"
	"github.com/bmaas/bmaas/api/inference"
	"github.com/bmaas/bmaas/internal/app"
	"github.com/bmaas/bmaas/pkg/runtimes"
	"github.com/bmaas/bmaas/services/traineragent/endpointkeys"
	"github.com/bmaas/bmaas/tests/harness"
)

const python = "/usr/bin/python3"

// BenchmarkTorchV2 measures the torch-v2 example runtime (the PyTorch
// example's iris classifier as TorchScript, one row per request) called
// directly over v2 REST against the same server through the gateway:
// REST passed through, and gRPC bridged to REST, at concurrency 1 and 32,
// side by side in one run. The server is started as the agent starts it
// (its runtime.json rendered, the serving contract's environment) and is
// the deployment's one replica; the platform runs without a trainer
// agent.
//
//	go test -run '^$' -bench TorchV2 -benchtime 1x ./bench/serving/
func BenchmarkTorchV2(b *testing.B) {
	if exec.Command(python, "-c", "import torch").Run() != nil {
		b.Skip(python + " lacks torch (Debian's python3-torch)")
	}
	modelDir := trainTorchScript(b)
	port := freePort(b)
	const token = "bench-token"
	startRuntime(b, "torch-v2", runtimes.Vars{ModelDir: modelDir, ModelName: "torchv2", ModelVersion: 1, HTTPPort: port,
		GRPCPort: freePort(b), Token: token, Params: map[string]string{}})
	addr := fmt.Sprintf("127.0.0.1:%d", port)

	c := harness.Start(b, func(cfg *app.Config) {
		cfg.Targets = slices.DeleteFunc(slices.Clone(cfg.Targets), func(s string) bool { return s == app.TargetTrainerAgent })
	})
	v := standInVersion(b, c)
	dc := gatewayv1.NewDeploymentServiceClient(c.Conn)
	if _, err := dc.CreateDeployment(context.Background(), &gatewayv1.CreateDeploymentRequest{Deployment: &gatewayv1.Deployment{
		Name: "torchv2", Model: "standin@" + fmt.Sprint(v), MinReplicas: 1, MaxReplicas: 1}}); err != nil {
		b.Fatal(err)
	}
	ep := &gatewayv1.Endpoint{Deployment: "torchv2", Replica: "torchv2-0", Version: v, Token: token,
		Address: addr, HttpAddress: addr, Protocols: []string{"v2-rest"}}
	val, err := proto.Marshal(ep)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := c.EtcdClient(b).Put(context.Background(), endpointkeys.Key("torchv2", "torchv2-0"), string(val)); err != nil {
		b.Fatal(err)
	}

	body := []byte(`{"inputs":[{"name":"input","datatype":"FP32","shape":[1,4],"data":[5.1,3.5,1.4,0.2]}]}`)
	hc := restClient()
	direct := restPost(hc, "http://"+addr+"/v2/models/torchv2/infer", token, body)
	viaREST := restPost(hc, c.HTTP+"/v2/models/torchv2/infer", c.Token, body)
	gw := inference.NewGRPCInferenceServiceClient(c.Conn)
	req := &inference.ModelInferRequest{ModelName: "torchv2", Inputs: []*inference.ModelInferRequest_InferInputTensor{{
		Name: "input", Datatype: "FP32", Shape: []int64{1, 4},
		Contents: &inference.InferTensorContents{Fp32Contents: []float32{5.1, 3.5, 1.4, 0.2}}}}}
	viaGRPC := func() error { _, err := gw.ModelInfer(context.Background(), req); return err }
	poll(b, "torch-v2 routed", func() bool { return viaREST() == nil && viaGRPC() == nil })

	for _, conc := range []int{1, 32} {
		b.Run(fmt.Sprintf("direct-rest-c%d", conc), func(b *testing.B) { load(conc, window, direct).report(b) })
		b.Run(fmt.Sprintf("gateway-rest-c%d", conc), func(b *testing.B) { load(conc, window, viaREST).report(b) })
		b.Run(fmt.Sprintf("gateway-grpc-c%d", conc), func(b *testing.B) { load(conc, window, viaGRPC).report(b) })
	}
}

// trainTorchScript trains the PyTorch example on iris for a few epochs
// and exports TorchScript; it returns the model directory.
func trainTorchScript(b *testing.B) string {
	b.Helper()
	data, out := b.TempDir(), b.TempDir()
	csv, err := os.ReadFile("../../examples/datasets/iris.csv")
	if err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(data, "iris.csv"), csv, 0o600); err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(python, "train.py")
	cmd.Dir = "../../examples/pytorch"
	cmd.Env = append(os.Environ(), "BMAAS_DATA_DIR="+data, "BMAAS_OUTPUT_DIR="+out, "BMAAS_CHECKPOINT_DIR="+b.TempDir(),
		`BMAAS_HPARAMS={"epochs":"5","hidden":"8","lr":"0.01","export":"torch"}`)
	if log, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("train.py: %v\n%s", err, log)
	}
	return out
}

// startRuntime runs examples/runtimes/NAME as the agent runs it and waits
// for its readiness probe; it returns a function that stops it.
func startRuntime(b *testing.B, name string, v runtimes.Vars) (stop func()) {
	b.Helper()
	dir := "../../examples/runtimes/" + name
	raw, err := os.ReadFile(filepath.Join(dir, "runtime.json"))
	if err != nil {
		b.Fatal(err)
	}
	rt := &gatewayv1.Runtime{}
	if err := protojson.Unmarshal(raw, rt); err != nil {
		b.Fatal(err)
	}
	args, env, err := runtimes.Render(rt.Server, v)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, rt.Server.Command, args...)
	cmd.Dir = dir
	cmd.Env = append(append(os.Environ(), runtimes.ContractEnv(v)...), env...)
	var log bytes.Buffer
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	stop = func() {
		cancel()
		_ = cmd.Wait()
		if b.Failed() {
			b.Logf("%s log:\n%s", name, log.String())
		}
	}
	b.Cleanup(stop)
	probe := fmt.Sprintf("http://127.0.0.1:%d%s", v.HTTPPort, runtimes.ProbeDefaults(rt.Server.ReadinessProbe).HTTPPath)
	deadline := time.Now().Add(2 * time.Minute)
	for {
		if resp, err := http.Get(probe); err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return stop
			}
		}
		if time.Now().After(deadline) {
			b.Fatalf("%s never passed its probe:\n%s", name, log.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func freePort(b *testing.B) int {
	b.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

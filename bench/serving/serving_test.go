// Package serving measures the inference data plane in `bmaas up` (the
// whole platform in one process): gRPC ModelInfer through the gateway
// against a raw grpc-go echo server with the same payload and against the
// replica called directly, REST v2 against gRPC, and dynamic batching on
// an MLP. Every figure of a run is measured side by side in that run.
//
//	go test -run '^$' -bench . -benchtime 1x ./bench/serving/
package serving

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"

	gatewayv1 "github.com/bmaas/bmaas/api/bmaas/gateway/v1"
	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
	schedulerv1 "github.com/bmaas/bmaas/api/bmaas/scheduler/v1"
	"github.com/bmaas/bmaas/api/inference"
	"github.com/bmaas/bmaas/internal/app"
	"github.com/bmaas/bmaas/pkg/mesh"
	"github.com/bmaas/bmaas/services/traineragent/endpointkeys"
	"github.com/bmaas/bmaas/tests/harness"
)

// window is how long each measurement runs.
const window = 2 * time.Second

func BenchmarkServing(b *testing.B) {
	c := harness.Start(b, func(cfg *app.Config) { cfg.Gateway.ReconcileInterval = 100 * time.Millisecond }, replicaMode, roomy)
	upload(b, c, "iris", "iris.csv")
	upload(b, c, "digits", "digits.csv")
	upload(b, c, "digits-wide", "digits.csv")
	train(b, c, "iris", "logistic", nil)
	train(b, c, "digits", "mlp", map[string]string{"hidden": "1024,1024", "epochs": "1"})
	// 64-4096-4096-10: 17 M parameters, 68 MB of float32 weights, twice
	// the 32 MB L3 of the benchmark machine, so one row streams every
	// weight from memory and a batch streams them once for all its rows.
	train(b, c, "digits-wide", "mlp", map[string]string{"hidden": "4096,4096", "epochs": "1"})
	deploy(b, c, "iris", "iris@1", 0, 0)
	deploy(b, c, "mlp-off", "digits@1", 0, 0)
	deploy(b, c, "mlp-on", "digits@1", 32, 2*time.Millisecond)
	// Batches of 8 under 32 clients: four batches overlap, one gathering
	// while the others compute.
	deploy(b, c, "mlp-on8", "digits@1", 8, 2*time.Millisecond)
	deploy(b, c, "wide-off", "digits-wide@1", 0, 0)
	deploy(b, c, "wide-on", "digits-wide@1", 32, 2*time.Millisecond)

	gw := inference.NewGRPCInferenceServiceClient(c.Conn)
	req := infer("iris", 4)
	resp, err := gw.ModelInfer(context.Background(), req)
	if err != nil {
		b.Fatal(err)
	}
	direct := dialReplica(b, c, "iris")
	raw := startEcho(b, resp)
	grpcCall := func(cl inference.GRPCInferenceServiceClient, r *inference.ModelInferRequest) func() error {
		return func() error { _, err := cl.ModelInfer(context.Background(), r); return err }
	}
	restBody, _ := json.Marshal(map[string]any{"inputs": []any{map[string]any{
		"name": "input", "datatype": "FP64", "shape": []int{1, 4}, "data": req.Inputs[0].Contents.Fp64Contents}}})
	restCall := restPost(restClient(), c.HTTP+"/v2/models/iris/infer", "", restBody)

	b.Run("echo-grpc-c64", func(b *testing.B) { load(64, window, grpcCall(raw, req)).report(b) })
	b.Run("gateway-grpc-c64", func(b *testing.B) { load(64, window, grpcCall(gw, req)).report(b) })
	b.Run("gateway-rest-c64", func(b *testing.B) { load(64, window, restCall).report(b) })
	b.Run("replica-grpc-c1", func(b *testing.B) { load(1, window, grpcCall(direct, req)).report(b) })
	b.Run("gateway-grpc-c1", func(b *testing.B) { load(1, window, grpcCall(gw, req)).report(b) })
	// The same gateway forwarding over gRPC instead of the replicas'
	// inference lane: a second platform with the lane turned off.
	hop := harness.Start(b, replicaMode, func(cfg *app.Config) {
		cfg.Gateway.ReconcileInterval = 100 * time.Millisecond
		cfg.Gateway.ReplicaLane = false
	})
	upload(b, hop, "iris", "iris.csv")
	train(b, hop, "iris", "logistic", nil)
	deploy(b, hop, "iris", "iris@1", 0, 0)
	hopGW := inference.NewGRPCInferenceServiceClient(hop.Conn)
	b.Run("gateway-grpchop-c64", func(b *testing.B) { load(64, window, grpcCall(hopGW, req)).report(b) })
	b.Run("gateway-grpchop-c1", func(b *testing.B) { load(1, window, grpcCall(hopGW, req)).report(b) })
	b.Run("mlp-batching-off-c32", func(b *testing.B) { load(32, window, grpcCall(gw, infer("mlp-off", 64))).report(b) })
	b.Run("mlp-batching-on-c32", func(b *testing.B) { load(32, window, grpcCall(gw, infer("mlp-on", 64))).report(b) })
	b.Run("mlp-batching-on8-c32", func(b *testing.B) { load(32, window, grpcCall(gw, infer("mlp-on8", 64))).report(b) })
	b.Run("wide-batching-off-c32", func(b *testing.B) { load(32, window, grpcCall(gw, infer("wide-off", 64))).report(b) })
	b.Run("wide-batching-on-c32", func(b *testing.B) { load(32, window, grpcCall(gw, infer("wide-on", 64))).report(b) })
}

// infer is a one-row request of features values.
func infer(model string, features int) *inference.ModelInferRequest {
	x := make([]float64, features)
	for i := range x {
		x[i] = float64(i%7) * 0.5
	}
	return &inference.ModelInferRequest{ModelName: model, Inputs: []*inference.ModelInferRequest_InferInputTensor{{
		Name: "input", Datatype: "FP64", Shape: []int64{1, int64(features)}, Contents: &inference.InferTensorContents{Fp64Contents: x}}}}
}

// replicaMode runs the replicas inside the agent's process when
// BMAAS_BENCH_REPLICAS=in-process, to compare with the default, sandboxed
// replica processes, side by side.
func replicaMode(cfg *app.Config) {
	switch os.Getenv("BMAAS_BENCH_REPLICAS") {
	case "in-process":
		cfg.TrainerAgent.ReplicaBinary = ""
	case "unconfined":
		cfg.TrainerAgent.Sandbox = "none"
	}
}

func upload(b *testing.B, c *harness.Cluster, name, file string) {
	data, err := os.ReadFile("../../examples/datasets/" + file)
	if err != nil {
		b.Fatal(err)
	}
	sum := sha256.Sum256(data)
	ctx := context.Background()
	up, err := c.Registry.UploadDataset(ctx)
	if err != nil {
		b.Fatal(err)
	}
	_ = up.Send(&registryv1.UploadDatasetRequest{Payload: &registryv1.UploadDatasetRequest_Header{
		Header: &registryv1.UploadDatasetHeader{Name: name, Sha256: hex.EncodeToString(sum[:])}}})
	_ = up.Send(&registryv1.UploadDatasetRequest{Payload: &registryv1.UploadDatasetRequest_Chunk{Chunk: data}})
	if _, err := up.CloseAndRecv(); err != nil {
		b.Fatal(err)
	}
	if _, err := c.Registry.CreateModel(ctx, &registryv1.CreateModelRequest{Model: &registryv1.Model{Name: name}}); err != nil {
		b.Fatal(err)
	}
}

func train(b *testing.B, c *harness.Cluster, model, algo string, params map[string]string) {
	ctx := context.Background()
	sc := schedulerv1.NewSchedulerServiceClient(c.Conn)
	sub, err := sc.SubmitJob(ctx, &schedulerv1.SubmitJobRequest{Spec: &schedulerv1.JobSpec{Model: model,
		Runtime: &schedulerv1.JobSpec_Builtin{Builtin: &schedulerv1.BuiltinRuntime{Algorithm: algo, Dataset: model,
			TargetColumn: "target", Hyperparameters: params, Seed: 1}}}})
	if err != nil {
		b.Fatal(err)
	}
	poll(b, "training "+model, func() bool {
		j, err := sc.GetJob(ctx, &schedulerv1.GetJobRequest{Id: sub.Job.Id})
		if err != nil || j.Job.State == schedulerv1.JobState_JOB_STATE_FAILED {
			b.Fatalf("job %s: %v %s", sub.Job.Id, err, j.GetJob().GetReason())
		}
		return j.Job.State == schedulerv1.JobState_JOB_STATE_SUCCEEDED
	})
}

func deploy(b *testing.B, c *harness.Cluster, name, model string, batch int32, delay time.Duration) {
	dc := gatewayv1.NewDeploymentServiceClient(c.Conn)
	_, err := dc.CreateDeployment(context.Background(), &gatewayv1.CreateDeploymentRequest{Deployment: &gatewayv1.Deployment{
		Name: name, Model: model, MinReplicas: 1, MaxReplicas: 1, MaxBatchSize: batch, MaxQueueDelayMicros: delay.Microseconds(),
		Resources: &schedulerv1.Resources{CpuMillis: replicaCPU, MemoryBytes: replicaMemory}}})
	if err != nil {
		b.Fatal(err)
	}
	poll(b, "deployment "+name, func() bool { return endpointOf(c, name) != "" })
}

// Every replica gets the whole machine's CPU and 1 GiB, as limits its
// sandbox enforces; the node offers enough for every deployment of the
// benchmark to be placed at once (roomy).
const (
	replicaCPU    = 2000
	replicaMemory = 1 << 30
)

func roomy(cfg *app.Config) {
	cfg.TrainerAgent.CPUMillis = 64_000
	cfg.TrainerAgent.MemoryBytes = 64 << 30
}

// dialReplica calls a deployment's replica directly, with the replica's
// own token from its endpoint record.
func dialReplica(b *testing.B, c *harness.Cluster, name string) inference.GRPCInferenceServiceClient {
	kvs, err := c.EtcdClient(b).Get(context.Background(), endpointkeys.Of(name), clientv3.WithPrefix())
	if err != nil || len(kvs.Kvs) == 0 {
		b.Fatalf("deployment %s has no ready replica: %v", name, err)
	}
	ep := &gatewayv1.Endpoint{}
	if err := proto.Unmarshal(kvs.Kvs[0].Value, ep); err != nil {
		b.Fatal(err)
	}
	conn, err := grpc.NewClient(ep.Address, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithPerRPCCredentials(mesh.Bearer(ep.Token)))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = conn.Close() })
	return inference.NewGRPCInferenceServiceClient(conn)
}

func endpointOf(c *harness.Cluster, name string) string {
	d, err := gatewayv1.NewDeploymentServiceClient(c.Conn).GetDeployment(context.Background(), &gatewayv1.GetDeploymentRequest{Name: name})
	if err != nil {
		return ""
	}
	for _, r := range d.Deployment.GetStatus().GetReplicas() {
		if r.Ready && r.Endpoint != "" {
			return r.Endpoint
		}
	}
	return ""
}

func poll(b *testing.B, what string, cond func() bool) {
	deadline := time.Now().Add(2 * time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			b.Fatalf("%s: not within 2 minutes", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

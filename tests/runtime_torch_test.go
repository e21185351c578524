//go:build integration

package tests

import (
	"bytes"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	evaluatorv1 "github.com/bmaas/bmaas/api/bmaas/evaluator/v1"
	gatewayv1 "github.com/bmaas/bmaas/api/bmaas/gateway/v1"
	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
	schedulerv1 "github.com/bmaas/bmaas/api/bmaas/scheduler/v1"
	"github.com/bmaas/bmaas/api/inference"
	"github.com/bmaas/bmaas/pkg/serving"
	"github.com/bmaas/bmaas/tests/harness"
)

// TestPyTorchModelServedByTorchV2: in bmaas up, the PyTorch example trains
// as a process job exporting TorchScript; its version is evaluated
// automatically through the torch-v2 runtime (registered from
// examples/runtimes with its code bundle) with the accuracy the script
// reported on the same rows, promoted by a policy, and deployed on
// torch-v2; v2 gRPC and REST answer what PyTorch answers on the same rows
// within 1e-6. A replica whose server is killed comes back (restarts 1)
// with no failed request beyond those in flight on it. A better version
// trained next is promoted, and the deployment following the alias rolls
// to it under a paced 200 requests/s with no failed request. A runtime
// whose probe never passes, and one whose code bundle does not unpack,
// leave their deployments saying why.
func TestPyTorchModelServedByTorchV2(t *testing.T) {
	t.Parallel()
	if !hasTorch() {
		t.Skip("/usr/bin/python3 lacks torch and onnx (Debian's python3-torch and python3-onnx; .ci/run installs them)")
	}
	c := harness.Start(t, withFastGateway())
	ctx := t.Context()
	sc := schedulerv1.NewSchedulerServiceClient(c.Conn)
	ec := evaluatorv1.NewEvaluatorServiceClient(c.Conn)
	dc := gatewayv1.NewDeploymentServiceClient(c.Conn)
	ic := inference.NewGRPCInferenceServiceClient(c.Conn)
	uploadDatasetFile(t, c.Registry, "breast-cancer", "breast_cancer.csv")

	// The runtime, from its file and its directory, as the README says.
	out, err := runCLI(t, c, "runtime", "create", "-f", "../examples/runtimes/torch-v2/runtime.json", "--code", "../examples/runtimes/torch-v2")
	require.NoError(t, err)
	require.Contains(t, out, "torch-v2")

	const model = "bc-torch"
	_, err = c.Registry.CreateModel(ctx, &registryv1.CreateModelRequest{Model: &registryv1.Model{Name: model}})
	require.NoError(t, err)
	_, err = ec.SetEvaluationPolicy(ctx, &evaluatorv1.SetEvaluationPolicyRequest{Policy: &evaluatorv1.EvaluationPolicy{
		Model: model, Datasets: []*evaluatorv1.DatasetRef{{Dataset: "breast-cancer"}},
		Promotion: &evaluatorv1.PromotionPolicy{TargetAlias: "production", PrimaryMetric: "eval_breast_cancer_accuracy",
			Direction: evaluatorv1.Direction_DIRECTION_MAXIMIZE, Enabled: true}}})
	require.NoError(t, err)

	// trainTorch trains a version and checks its automatic evaluation on
	// the job's split against what the script reported.
	trainTorch := func(hp map[string]string) (*schedulerv1.Job, int64) {
		t.Helper()
		hp["export"] = "torch"
		sub, err := sc.SubmitJob(ctx, &schedulerv1.SubmitJobRequest{Spec: &schedulerv1.JobSpec{Model: model,
			Runtime: &schedulerv1.JobSpec_Process{Process: &schedulerv1.ProcessRuntime{Command: "/usr/bin/python3",
				Args: []string{"train.py"}, Workdir: examplesDir(t), Dataset: "breast-cancer", Hyperparameters: hp}}}})
		require.NoError(t, err)
		job := waitJob(t, sc, sub.Job.Id, 3*time.Minute)
		require.Equal(t, schedulerv1.JobState_JOB_STATE_SUCCEEDED, job.State, "reason: %s", job.Reason)
		return job, job.ModelVersion
	}
	evaluated := func(job *schedulerv1.Job) {
		t.Helper()
		v, err := c.Registry.GetModelVersion(ctx, &registryv1.GetModelVersionRequest{Model: model, Version: itoa64(job.ModelVersion)})
		require.NoError(t, err)
		require.Equal(t, registryv1.ModelFormat_MODEL_FORMAT_PYTORCH, v.Version.Format)
		reported, ok := v.Version.Metrics["validation_accuracy"]
		require.True(t, ok, "the script reports its validation accuracy: %v", v.Version.Metrics)
		var auto *evaluatorv1.Evaluation
		eventually(t, 3*time.Minute, "the automatic evaluation on the job's split", func() bool {
			for _, ev := range evaluationsOf(t, ec, model, job.ModelVersion) {
				if ev.JobId == job.Id && ev.State != evaluatorv1.EvaluationState_EVALUATION_STATE_RUNNING {
					auto = ev
				}
			}
			return auto != nil
		})
		require.Equal(t, evaluatorv1.EvaluationState_EVALUATION_STATE_SUCCEEDED, auto.State, auto.Message)
		require.InDelta(t, reported, auto.Metrics["accuracy"], 1e-6, "the script's accuracy (a float32) on the same rows")
		require.True(t, strings.HasPrefix(auto.RunsOn, "job:"), "evaluated through a replica: %s", auto.RunsOn)
	}
	decided := func(v int64) *evaluatorv1.Decision {
		t.Helper()
		var d *evaluatorv1.Decision
		eventually(t, 3*time.Minute, "the promotion decision", func() bool {
			for _, x := range decisions(t, ec, model) {
				if x.Version == v {
					d = x
				}
			}
			return d != nil
		})
		return d
	}

	// Version 1: a model barely trained.
	job1, v1 := trainTorch(map[string]string{"epochs": "1", "hidden": "4", "lr": "0.000001", "seed": "5"})
	evaluated(job1)
	d1 := decided(v1)
	require.True(t, d1.Promoted, "%v", d1.Reasons)

	// Deployed on torch-v2, following the alias.
	const dep = "bc-e2e"
	_, err = dc.CreateDeployment(ctx, &gatewayv1.CreateDeploymentRequest{Deployment: &gatewayv1.Deployment{
		Name: dep, Model: model + "@production", Runtime: "torch-v2", MinReplicas: 2, MaxReplicas: 2,
		Resources: &schedulerv1.Resources{CpuMillis: 200, MemoryBytes: 768 << 20}}})
	require.NoError(t, err)
	readyOn := func(v int64) func() bool {
		return func() bool {
			d, err := dc.GetDeployment(ctx, &gatewayv1.GetDeploymentRequest{Name: dep})
			require.NoError(t, err)
			st := d.Deployment.GetStatus()
			if st.GetVersion() != v || st.GetReadyReplicas() != 2 || len(st.GetReplicas()) != 2 {
				return false
			}
			for _, r := range st.GetReplicas() {
				if r.Version != v || !r.Ready {
					return false
				}
			}
			return true
		}
	}
	eventually(t, 2*time.Minute, "two torch-v2 replicas of version 1", readyOn(v1))

	// The same predictions as PyTorch, over gRPC and REST.
	rows := csvRows(t, "breast_cancer.csv", 12)
	want := torchScriptProbabilities(t, downloadBytes(t, c.Registry, model, itoa64(v1)), rows)
	md, err := ic.ModelMetadata(ctx, &inference.ModelMetadataRequest{Name: dep})
	require.NoError(t, err)
	flat := slices.Concat(rows...)
	req := &inference.ModelInferRequest{ModelName: dep, Inputs: []*inference.ModelInferRequest_InferInputTensor{{
		Name: md.Inputs[0].Name, Datatype: "FP64", Shape: []int64{int64(len(rows)), int64(len(rows[0]))},
		Contents: &inference.InferTensorContents{Fp64Contents: flat}}}}
	resp, err := ic.ModelInfer(ctx, req)
	require.NoError(t, err)
	require.Equal(t, itoa64(v1), resp.ModelVersion)
	gotGRPC := map[string]*inference.InferTensorContents{}
	for i, o := range resp.Outputs {
		gotGRPC[o.Name] = o.Contents
		if i < len(resp.RawOutputContents) { // raw, as the v2 gRPC protocol allows
			gotGRPC[o.Name], err = serving.RawContents(o.Datatype, resp.RawOutputContents[i])
			require.NoError(t, err)
		}
	}
	require.Contains(t, gotGRPC, "probabilities", "outputs: %v", resp.Outputs)
	requireProbabilities(t, want, gotGRPC["probabilities"].GetFp64Contents(), "gRPC")
	code, body := httpDo(t, c, http.MethodPost, "/v2/models/"+dep+"/infer", map[string]any{"inputs": []any{map[string]any{
		"name": md.Inputs[0].Name, "datatype": "FP64", "shape": []int{len(rows), len(rows[0])}, "data": flat}}})
	require.Equal(t, http.StatusOK, code, "%s", body)
	var rest struct {
		Outputs []struct {
			Name string          `json:"name"`
			Data json.RawMessage `json:"data"`
		} `json:"outputs"`
	}
	require.NoError(t, json.Unmarshal(body, &rest), "%s", body)
	for _, o := range rest.Outputs {
		switch o.Name {
		case "probabilities":
			var p []float64
			require.NoError(t, json.Unmarshal(o.Data, &p))
			requireProbabilities(t, want, p, "REST")
		case "predictions":
			var labels []string
			require.NoError(t, json.Unmarshal(o.Data, &labels))
			var grpcLabels []string
			for _, b := range gotGRPC["predictions"].GetBytesContents() {
				grpcLabels = append(grpcLabels, string(b))
			}
			require.Equal(t, grpcLabels, labels, "gRPC and REST name the same classes")
			require.Len(t, labels, len(rows))
		}
	}

	// A replica's server killed under load: it comes back, and no request
	// fails beyond those in flight on it.
	const clientsN = 4
	var sent, failed atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range clientsN {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				sent.Add(1)
				if _, err := ic.ModelInfer(ctx, req); err != nil && failed.Add(1) <= 3 {
					t.Logf("request failed while a replica was killed: %v", err)
				}
			}
		}()
	}
	time.Sleep(300 * time.Millisecond)
	pid := replicaServerPID(t, dep)
	require.NotZero(t, pid, "a torch-v2 server of %s", dep)
	require.NoError(t, syscall.Kill(pid, syscall.SIGKILL))
	eventually(t, 2*time.Minute, "the killed replica restarted, counted in deploy get", func() bool {
		d, err := dc.GetDeployment(ctx, &gatewayv1.GetDeploymentRequest{Name: dep})
		require.NoError(t, err)
		restarts := int32(0)
		for _, r := range d.Deployment.GetStatus().GetReplicas() {
			restarts += r.Restarts
		}
		return restarts == 1 && readyOn(v1)()
	})
	close(stop)
	wg.Wait()
	t.Logf("%d requests while a replica was killed and restarted, %d failed", sent.Load(), failed.Load())
	require.LessOrEqual(t, failed.Load(), int64(clientsN), "no failure beyond the requests in flight on the killed replica")
	out, err = runCLI(t, c, "deploy", "get", dep)
	require.NoError(t, err)
	require.Contains(t, out, "RESTARTS")

	// Version 2, better trained, is promoted; the alias moves and the
	// deployment rolls to it under a paced 200 requests/s.
	const rate = 200
	sent.Store(0)
	failed.Store(0)
	var onV2 atomic.Int64
	pacing := make(chan struct{})
	paced := make(chan struct{})
	go func() {
		defer close(paced)
		tick := time.NewTicker(time.Second / rate)
		defer tick.Stop()
		var inflight sync.WaitGroup
		defer inflight.Wait()
		for {
			select {
			case <-pacing:
				return
			case <-tick.C:
			}
			sent.Add(1)
			inflight.Add(1)
			go func() {
				defer inflight.Done()
				resp, err := ic.ModelInfer(ctx, req)
				switch {
				case err != nil:
					if failed.Add(1) <= 5 {
						t.Logf("request failed while the alias moved: %v", err)
					}
				case resp.ModelVersion != itoa64(v1):
					onV2.Add(1)
				}
			}()
		}
	}()
	start := time.Now()
	job2, v2 := trainTorch(map[string]string{"epochs": "30", "hidden": "16", "lr": "0.01", "seed": "5"})
	evaluated(job2)
	d2 := decided(v2)
	require.True(t, d2.Promoted, "a better version is promoted: %v", d2.Reasons)
	eventually(t, 3*time.Minute, "the deployment on version 2", readyOn(v2))
	time.Sleep(time.Second)
	close(pacing)
	<-paced
	el := time.Since(start)
	t.Logf("%d requests in %s (%.0f/s) while version 2 trained, was evaluated, promoted and rolled out; %d answered by it, %d failed",
		sent.Load(), el.Round(time.Millisecond), float64(sent.Load())/el.Seconds(), onV2.Load(), failed.Load())
	require.Zero(t, failed.Load(), "failed requests while the alias moved")
	require.Positive(t, onV2.Load())

	// A runtime whose probe never passes: the deployment says why.
	rt, err := gatewayv1.NewRuntimeServiceClient(c.Conn).GetRuntime(ctx, &gatewayv1.GetRuntimeRequest{Name: "torch-v2"})
	require.NoError(t, err)
	never := proto.Clone(rt.Runtime).(*gatewayv1.Runtime)
	never.Name, never.Formats = "torch-never", nil
	never.Formats = []*gatewayv1.RuntimeFormat{{Name: "pytorch", Priority: -1}}
	never.Server.ReadinessProbe.HttpPath = "/nope"
	never.Server.ReadinessProbe.StartupTimeout = durationpb.New(8 * time.Second)
	// A code bundle that is no archive: accepted (it is in the registry),
	// then no replica can unpack it.
	junk := proto.Clone(rt.Runtime).(*gatewayv1.Runtime)
	junk.Name = "torch-junk"
	junk.Formats = []*gatewayv1.RuntimeFormat{{Name: "pytorch", Priority: -1}}
	junk.Server.CodeBundleSha256 = uploadBundle(t, c.Registry, []byte("not a tar.gz"))
	for _, r := range []*gatewayv1.Runtime{never, junk} {
		r.Etag, r.CreateTime = "", nil
		_, err = gatewayv1.NewRuntimeServiceClient(c.Conn).CreateRuntime(ctx, &gatewayv1.CreateRuntimeRequest{Runtime: r})
		require.NoError(t, err)
	}
	for name, why := range map[string]string{"torch-never": "readiness probe GET /nope: 404",
		"torch-junk": "runtime.server.code_bundle_sha256: code bundle " + junk.Server.CodeBundleSha256} {
		_, err = dc.CreateDeployment(ctx, &gatewayv1.CreateDeploymentRequest{Deployment: &gatewayv1.Deployment{
			Name: name, Model: model + "@" + itoa64(v1), Runtime: name, MinReplicas: 1, MaxReplicas: 1,
			Resources: &schedulerv1.Resources{CpuMillis: 100, MemoryBytes: 512 << 20}}})
		require.NoError(t, err)
		var msg string
		eventually(t, 2*time.Minute, name+"'s deployment saying why", func() bool {
			d, err := dc.GetDeployment(ctx, &gatewayv1.GetDeploymentRequest{Name: name})
			require.NoError(t, err)
			msg = d.Deployment.GetStatus().GetMessage()
			return strings.Contains(msg, why)
		})
		t.Logf("%s: %s", name, msg)
		_, err = dc.DeleteDeployment(ctx, &gatewayv1.DeleteDeploymentRequest{Name: name})
		require.NoError(t, err)
	}
}

// csvRows reads the first n rows of an example dataset, its last column
// (the target) left out.
func csvRows(t *testing.T, file string, n int) [][]float64 {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "examples", "datasets", file))
	require.NoError(t, err)
	recs, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
	require.NoError(t, err)
	out := make([][]float64, 0, n)
	for _, rec := range recs[1 : n+1] {
		row := make([]float64, len(rec)-1)
		for i := range row {
			row[i], err = strconv.ParseFloat(rec[i], 64)
			require.NoError(t, err)
		}
		out = append(out, row)
	}
	return out
}

// torchScriptProbabilities runs the TorchScript model of a version's
// archive in PyTorch: softmax of its logits for rows as float32.
func torchScriptProbabilities(t *testing.T, archive []byte, rows [][]float64) [][]float64 {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "model.tar.gz")
	require.NoError(t, os.WriteFile(path, archive, 0o600))
	in, err := json.Marshal(rows)
	require.NoError(t, err)
	cmd := exec.CommandContext(t.Context(), "/usr/bin/python3", "-c", `
import json, sys, tarfile, torch
torch.set_num_threads(1)
tarfile.open(sys.argv[1]).extractall(sys.argv[2])
m = torch.jit.load(sys.argv[2] + "/model.ts")
with torch.no_grad():
    p = torch.softmax(m(torch.tensor(json.load(sys.stdin), dtype=torch.float32)).double(), dim=1)
print(json.dumps(p.tolist()))
`, path, dir)
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	b, err := cmd.Output()
	require.NoError(t, err, "%s", stderr.String())
	var p [][]float64
	require.NoError(t, json.Unmarshal(b, &p), "%s", b)
	require.Len(t, p, len(rows))
	return p
}

func requireProbabilities(t *testing.T, want [][]float64, got []float64, over string) {
	t.Helper()
	k := len(want[0])
	require.Len(t, got, len(want)*k, over)
	for i, row := range want {
		for j, w := range row {
			require.InDelta(t, w, got[i*k+j], 1e-6, "%s: row %d class %d", over, i, j)
		}
	}
}

// replicaServerPID is the host pid of a python server serving deployment
// dep (BMAAS_MODEL_NAME), 0 when none runs.
func replicaServerPID(t *testing.T, dep string) int {
	t.Helper()
	pid, _ := findProcess(t, func(args, env []string) bool {
		return strings.HasPrefix(filepath.Base(args[0]), "python") && slices.Contains(args, "server.py") &&
			slices.Contains(env, "BMAAS_MODEL_NAME="+dep)
	})
	return pid
}

// uploadBundle stores data as a code bundle and returns its digest.
func uploadBundle(t *testing.T, c registryv1.RegistryServiceClient, data []byte) string {
	t.Helper()
	sum := sha256.Sum256(data)
	sha := hex.EncodeToString(sum[:])
	stream, err := c.UploadBundle(t.Context())
	require.NoError(t, err)
	require.NoError(t, stream.Send(&registryv1.UploadBundleRequest{Payload: &registryv1.UploadBundleRequest_Header{
		Header: &registryv1.UploadBundleHeader{Filename: "junk.tar.gz", Sha256: sha}}}))
	require.NoError(t, stream.Send(&registryv1.UploadBundleRequest{Payload: &registryv1.UploadBundleRequest_Chunk{Chunk: data}}))
	_, err = stream.CloseAndRecv()
	require.NoError(t, err)
	return sha
}

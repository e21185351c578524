package replica

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/bmaas/bmaas/api/inference"
	"github.com/bmaas/bmaas/pkg/serving"
)

const exampleONNX = "../../examples/models/logreg-v1.onnx"

// modelDir is a version's directory: the example ONNX classifier and,
// when sig is set, its signature.
func modelDir(t *testing.T, sig string) string {
	t.Helper()
	dir := t.TempDir()
	b, err := os.ReadFile(exampleONNX)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "model.onnx"), b, 0o600))
	if sig != "" {
		require.NoError(t, os.WriteFile(filepath.Join(dir, "signature.json"), []byte(sig), 0o600))
	}
	return dir
}

const probabilitiesSignature = `{"inputs": [{"name": "input", "datatype": "DATA_TYPE_FP32", "shape": [-1, 30]}],
 "outputs": [{"name": "probabilities", "datatype": "DATA_TYPE_FP32", "shape": [-1, 2],
              "labels": ["benign", "malignant"], "kind": "OUTPUT_KIND_PROBABILITIES"}]}`

func envOf(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

// Flags left out take the serving contract's variables; the signature
// beside the model names its classes; BMAAS_PARAMS batches.
func TestContractOptionsFromEnvironment(t *testing.T) {
	dir := modelDir(t, probabilitiesSignature)
	env := map[string]string{"BMAAS_MODEL_DIR": dir, "BMAAS_MODEL_NAME": "bc", "BMAAS_MODEL_VERSION": "7",
		"BMAAS_GRPC_PORT": "9123", "BMAAS_TOKEN": "tok", "BMAAS_PARAMS": `{"max_batch_size":"16","max_queue_delay_ms":"2.5"}`}
	o, err := Contract{Format: "onnx"}.Options(envOf(env))
	require.NoError(t, err)
	require.Equal(t, filepath.Join(dir, "model.onnx"), o.ModelPath)
	require.Equal(t, "bc", o.Name)
	require.Equal(t, int64(7), o.Version)
	require.Equal(t, 9123, o.GRPCPort)
	require.Equal(t, "tok", o.Token)
	require.Equal(t, []string{"benign", "malignant"}, o.Classes)
	require.False(t, o.Logits)
	require.Equal(t, serving.Batching{MaxBatchSize: 16, MaxQueueDelay: 2500 * time.Microsecond}, o.Batching)

	// Flags win over the environment; the token comes from --token-env's variable.
	env["MY_TOKEN"] = "mine"
	o, err = Contract{Format: "onnx", ModelDir: exampleONNX, Name: "flag", Version: 2, GRPCPort: 9200, TokenEnv: "MY_TOKEN"}.Options(envOf(env))
	require.NoError(t, err)
	require.Equal(t, exampleONNX, o.ModelPath)
	require.Equal(t, "flag", o.Name)
	require.Equal(t, int64(2), o.Version)
	require.Equal(t, 9200, o.GRPCPort)
	require.Equal(t, "mine", o.Token)
	require.Nil(t, o.Classes, "no signature beside examples/models")
}

// Each mistake names the flag (or variable) at fault.
func TestContractOptionsErrors(t *testing.T) {
	dir := modelDir(t, "")
	two := modelDir(t, "")
	require.NoError(t, os.WriteFile(filepath.Join(two, "other.onnx"), []byte("x"), 0o600))
	base := func() map[string]string {
		return map[string]string{"BMAAS_MODEL_DIR": dir, "BMAAS_MODEL_NAME": "bc", "BMAAS_GRPC_PORT": "9123", "BMAAS_TOKEN": "tok"}
	}
	for _, tc := range []struct {
		name   string
		c      Contract
		change func(map[string]string)
		want   string
	}{
		{"no format", Contract{}, nil, "--format"},
		{"unknown format", Contract{Format: "pytorch"}, nil, `--format: "pytorch"`},
		{"no model dir", Contract{Format: "onnx"}, func(m map[string]string) { delete(m, "BMAAS_MODEL_DIR") }, "--model-dir (or BMAAS_MODEL_DIR) is required"},
		{"missing model dir", Contract{Format: "onnx", ModelDir: filepath.Join(dir, "nope")}, nil, "--model-dir:"},
		{"two models", Contract{Format: "onnx", ModelDir: two}, nil, "holds 2 .onnx files, want one"},
		{"no native model", Contract{Format: "native"}, nil, "holds 0 .bmaas files"},
		{"no name", Contract{Format: "onnx"}, func(m map[string]string) { delete(m, "BMAAS_MODEL_NAME") }, "--name (or BMAAS_MODEL_NAME)"},
		{"no port", Contract{Format: "onnx"}, func(m map[string]string) { delete(m, "BMAAS_GRPC_PORT") }, "--grpc-port (or BMAAS_GRPC_PORT)"},
		{"bad port", Contract{Format: "onnx"}, func(m map[string]string) { m["BMAAS_GRPC_PORT"] = "http" }, `--grpc-port: BMAAS_GRPC_PORT="http"`},
		{"bad version", Contract{Format: "onnx"}, func(m map[string]string) { m["BMAAS_MODEL_VERSION"] = "v1" }, `--version: BMAAS_MODEL_VERSION="v1"`},
		{"no token", Contract{Format: "onnx"}, func(m map[string]string) { delete(m, "BMAAS_TOKEN") }, "--token-env: BMAAS_TOKEN is empty"},
		{"bad params", Contract{Format: "onnx"}, func(m map[string]string) { m["BMAAS_PARAMS"] = `{"max_batch_size":"many"}` }, "BMAAS_PARAMS max_batch_size"},
		{"bad delay", Contract{Format: "onnx"}, func(m map[string]string) { m["BMAAS_PARAMS"] = `{"max_queue_delay_ms":"-1"}` }, "BMAAS_PARAMS max_queue_delay_ms"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := base()
			if tc.change != nil {
				tc.change(env)
			}
			_, err := tc.c.Options(envOf(env))
			require.ErrorContains(t, err, tc.want)
		})
	}
}

// syncBuffer is a log written by the server's goroutine and read by the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// `bmaas replica --format onnx` serves KServe v2 gRPC on the contract's
// port: ServerReady and the model's calls want the bearer token, the
// health service does not; the signature's classes name the outputs; it
// drains when its context ends.
func TestServeContractSpeaksV2GRPC(t *testing.T) {
	port := freePort(t)
	env := map[string]string{"BMAAS_MODEL_DIR": modelDir(t, probabilitiesSignature), "BMAAS_MODEL_NAME": "bc",
		"BMAAS_MODEL_VERSION": "3", "BMAAS_GRPC_PORT": strconv.Itoa(port), "BMAAS_TOKEN": "s3cret"}
	ctx, cancel := context.WithCancel(t.Context())
	var log syncBuffer
	done := make(chan error, 1)
	go func() { done <- ServeContract(ctx, Contract{Format: "onnx", Host: "127.0.0.1"}, envOf(env), &log) }()
	t.Cleanup(cancel)

	conn, err := grpc.NewClient("127.0.0.1:"+strconv.Itoa(port), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer conn.Close()
	inf := inference.NewGRPCInferenceServiceClient(conn)
	authed := metadata.AppendToOutgoingContext(t.Context(), "authorization", "Bearer s3cret")
	require.Eventually(t, func() bool {
		r, err := inf.ServerReady(authed, &inference.ServerReadyRequest{})
		return err == nil && r.Ready
	}, 30*time.Second, 20*time.Millisecond, "ServerReady; log: %s", log.String())
	require.Contains(t, log.String(), "replica of bc version 3 (onnx, ")
	require.Contains(t, log.String(), "serving KServe v2 gRPC on port "+strconv.Itoa(port))

	h, err := healthpb.NewHealthClient(conn).Check(t.Context(), &healthpb.HealthCheckRequest{})
	require.NoError(t, err)
	require.Equal(t, healthpb.HealthCheckResponse_SERVING, h.Status)
	_, err = inf.ServerReady(t.Context(), &inference.ServerReadyRequest{})
	require.Equal(t, codes.Unauthenticated, status.Code(err), "%v", err)

	md, err := inf.ModelMetadata(authed, &inference.ModelMetadataRequest{Name: "bc"})
	require.NoError(t, err)
	require.Equal(t, []string{"3"}, md.Versions)
	require.Len(t, md.Outputs, 2)
	require.Equal(t, "predictions", md.Outputs[0].Name)
	require.Equal(t, "probabilities", md.Outputs[1].Name)

	row := make([]float32, 30)
	req := &inference.ModelInferRequest{ModelName: "bc", Inputs: []*inference.ModelInferRequest_InferInputTensor{{
		Name: "input", Datatype: "FP32", Shape: []int64{1, 30}, Contents: &inference.InferTensorContents{Fp32Contents: row}}}}
	_, err = inf.ModelInfer(t.Context(), req)
	require.Equal(t, codes.Unauthenticated, status.Code(err), "%v", err)
	resp, err := inf.ModelInfer(authed, req)
	require.NoError(t, err)
	require.Equal(t, "predictions", resp.Outputs[0].Name)
	require.Len(t, resp.Outputs[0].GetContents().GetBytesContents(), 1)
	label := string(resp.Outputs[0].Contents.BytesContents[0])
	require.Contains(t, []string{"benign", "malignant"}, label)

	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(30 * time.Second):
		t.Fatal("the replica did not stop when its context ended")
	}
	require.Contains(t, log.String(), "replica drained")
}

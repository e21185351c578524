//go:build integration

package runtimes

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protojson"

	commonv1 "github.com/bmaas/bmaas/api/bmaas/common/v1"
	gatewayv1 "github.com/bmaas/bmaas/api/bmaas/gateway/v1"
	"github.com/bmaas/bmaas/api/inference"
	"github.com/bmaas/bmaas/pkg/serving"
)

const python = "/usr/bin/python3"

// trainIris runs the PyTorch example on iris with export (onnx or torch)
// into a fresh directory; the same seed makes the same weights.
func trainIris(t *testing.T, export string) string {
	t.Helper()
	data, out := t.TempDir(), t.TempDir()
	b, err := os.ReadFile("../../examples/datasets/iris.csv")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(data, "iris.csv"), b, 0o600))
	cmd := exec.Command(python, "train.py")
	cmd.Dir = "../../examples/pytorch"
	cmd.Env = append(os.Environ(), "BMAAS_DATA_DIR="+data, "BMAAS_OUTPUT_DIR="+out, "BMAAS_CHECKPOINT_DIR="+t.TempDir(),
		`BMAAS_HPARAMS={"epochs":"5","hidden":"8","lr":"0.01","export":"`+export+`"}`)
	log, err := cmd.CombinedOutput()
	require.NoError(t, err, "train.py: %s", log)
	return out
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startRuntime runs an example runtime's server as the agent does: its
// rendered arguments and environment, the contract's environment, its
// directory as the working directory (its code bundle); it returns once
// the readiness probe passes.
func startRuntime(t *testing.T, name string, v Vars) {
	t.Helper()
	dir := filepath.Join("../../examples/runtimes", name)
	b, err := os.ReadFile(filepath.Join(dir, "runtime.json"))
	require.NoError(t, err)
	rt := &gatewayv1.Runtime{}
	require.NoError(t, protojson.Unmarshal(b, rt))
	args, env, err := Render(rt.Server, v)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, rt.Server.Command, args...)
	cmd.Dir = dir
	cmd.Env = append(append(os.Environ(), ContractEnv(v)...), env...)
	var log bytes.Buffer
	cmd.Stdout, cmd.Stderr = &log, &log
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("%s log:\n%s", name, log.String())
		}
	})
	probe := fmt.Sprintf("http://127.0.0.1:%d%s", v.HTTPPort, ProbeDefaults(rt.Server.ReadinessProbe).HTTPPath)
	require.Eventually(t, func() bool {
		resp, err := http.Get(probe)
		if err != nil {
			return false
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, ProbeDefaults(rt.Server.ReadinessProbe).StartupTimeout, 100*time.Millisecond, "%s never passed its probe", name)
}

// call sends one request as the gateway's v2 REST bridge does and returns
// the body and its Inference-Header-Content-Length.
func call(t *testing.T, method, url, token string, body []byte, headerLen int) ([]byte, int) {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+token)
	if headerLen < len(body) {
		req.Header.Set("Content-Type", "application/octet-stream")
		req.Header.Set(serving.HeaderContentLength, strconv.Itoa(headerLen))
	} else if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s %s: %s", method, url, b)
	hl, err := serving.HeaderLength(resp.Header.Get(serving.HeaderContentLength), len(b))
	require.NoError(t, err)
	return b, hl
}

// outputs are a response's outputs by name: class labels, or values.
func outputs(t *testing.T, resp *inference.ModelInferResponse) (labels []string, values []float64) {
	t.Helper()
	for i, o := range resp.Outputs {
		c := o.Contents
		if i < len(resp.RawOutputContents) {
			var err error
			c, err = serving.RawContents(o.Datatype, resp.RawOutputContents[i])
			require.NoError(t, err)
		}
		switch o.Name {
		case "predictions":
			for _, b := range c.GetBytesContents() {
				labels = append(labels, string(b))
			}
		case "probabilities":
			values = c.GetFp64Contents()
		}
	}
	return labels, values
}

// The torch-v2 example runtime, run as the agent runs it and called as
// the gateway's bridge calls it (JSON below 1 KiB, binary data above),
// answers the PyTorch example's model with the outputs, and within 1e-6
// the values, that bmaas's built-in ONNX runtime answers for the same
// model exported as ONNX.
func TestTorchV2AnswersAsTheBuiltinRuntime(t *testing.T) {
	if exec.Command(python, "-c", "import torch").Run() != nil {
		t.Skip(python + " lacks torch (Debian's python3-torch)")
	}
	onnxDir, torchDir := trainIris(t, "onnx"), trainIris(t, "torch")
	// A version's archive holds no signature.json: the server reads model.json.
	require.NoError(t, os.Remove(filepath.Join(torchDir, "signature.json")))

	sigJSON, err := os.ReadFile(filepath.Join(onnxDir, "signature.json"))
	require.NoError(t, err)
	sig := &commonv1.Signature{}
	require.NoError(t, protojson.Unmarshal(sigJSON, sig))
	classes, logits := serving.ClassesOf(sig)
	require.Equal(t, []string{"0", "1", "2"}, classes)
	builtin, err := serving.Load(filepath.Join(onnxDir, "model.onnx"), serving.Options{Name: "iris", Version: 2,
		Format: serving.FormatONNX, Classes: classes, Logits: logits})
	require.NoError(t, err)
	defer builtin.Close()

	v := Vars{ModelDir: torchDir, ModelName: "iris", ModelVersion: 2, HTTPPort: freePort(t), GRPCPort: freePort(t),
		Params: map[string]string{"max_batch_size": "64"}, Token: "replica-token"}
	startRuntime(t, "torch-v2", v)
	base := fmt.Sprintf("http://127.0.0.1:%d/v2/models/iris", v.HTTPPort)

	body, _ := call(t, http.MethodGet, base, v.Token, nil, 0)
	md := &inference.ModelMetadataResponse{}
	require.NoError(t, serving.DecodeModelMetadata(body, md))
	require.Equal(t, []string{"2"}, md.Versions)
	specs := func(ts []serving.TensorSpec) (out []string) {
		for _, s := range ts {
			out = append(out, fmt.Sprintf("%s %s %v", s.Name, s.Datatype, s.Shape))
		}
		return out
	}
	got := func(ts []*inference.ModelMetadataResponse_TensorMetadata) (out []string) {
		for _, s := range ts {
			out = append(out, fmt.Sprintf("%s %s %v", s.Name, s.Datatype, s.Shape))
		}
		return out
	}
	require.Equal(t, specs(builtin.Inputs), got(md.Inputs))
	require.Equal(t, specs(builtin.Outputs), got(md.Outputs))

	rows := irisRows(t)
	for _, n := range []int{1, len(rows)} { // 16 bytes as JSON; 2,400 bytes as binary data
		var x []float32
		for _, r := range rows[:n] {
			x = append(x, r...)
		}
		req := &inference.ModelInferRequest{ModelName: "iris", Inputs: []*inference.ModelInferRequest_InferInputTensor{{
			Name: "input", Datatype: "FP32", Shape: []int64{int64(n), 4}, Contents: &inference.InferTensorContents{Fp32Contents: x}}}}
		want, err := builtin.Infer(t.Context(), req)
		require.NoError(t, err)
		wantLabels, wantProbs := outputs(t, want)

		reqBody, hl := serving.AppendInferRequest(nil, req, 1024)
		require.Equal(t, n > 1, hl < len(reqBody), "binary data from 1 KiB")
		b, rhl := call(t, http.MethodPost, base+"/infer", v.Token, reqBody, hl)
		resp := &inference.ModelInferResponse{}
		require.NoError(t, serving.DecodeInferResponse(b, rhl, resp))
		require.Equal(t, "2", resp.ModelVersion)
		labels, probs := outputs(t, resp)
		require.Equal(t, wantLabels, labels)
		require.Len(t, probs, len(wantProbs))
		for i := range probs {
			require.InDelta(t, wantProbs[i], probs[i], 1e-6, "probability %d of %d rows", i, n)
		}
	}
}

// irisRows are the iris dataset's feature rows.
func irisRows(t *testing.T) [][]float32 {
	t.Helper()
	b, err := os.ReadFile("../../examples/datasets/iris.csv")
	require.NoError(t, err)
	var rows [][]float32
	for i, line := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
		if i == 0 {
			continue
		}
		var r []float32
		for _, v := range bytes.Split(line, []byte(","))[:4] {
			x, err := strconv.ParseFloat(string(v), 32)
			require.NoError(t, err)
			r = append(r, float32(x))
		}
		rows = append(rows, r)
	}
	return rows
}

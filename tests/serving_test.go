//go:build integration

package tests

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	gatewayv1 "github.com/bmaas/bmaas/api/bmaas/gateway/v1"
	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
	"github.com/bmaas/bmaas/api/inference"
	"github.com/bmaas/bmaas/internal/app"
	"github.com/bmaas/bmaas/pkg/ml/artifact"
	"github.com/bmaas/bmaas/pkg/ml/dataset"
	"github.com/bmaas/bmaas/tests/harness"
)

// TestServingEndToEnd: train, deploy NAME@production, then REST v2 and
// gRPC ModelInfer answer exactly what the artifact predicts locally; bad
// input is refused naming the field; the alias moves under steady load
// with no failed request and the replicas end on the new version. The
// gateway forwards over the replicas' inference lane.
func TestServingEndToEnd(t *testing.T) {
	t.Parallel()
	servingEndToEnd(t, true)
}

// TestServingOverGRPCHop: the same answers and the same refusals when
// the gateway forwards to the replicas over gRPC (the lane turned off).
func TestServingOverGRPCHop(t *testing.T) {
	t.Parallel()
	servingEndToEnd(t, false)
}

func servingEndToEnd(t *testing.T, useLane bool) {
	c := harness.Start(t, withFastGateway(), func(cfg *app.Config) { cfg.Gateway.ReplicaLane = useLane })
	ctx := t.Context()
	uploadDatasetFile(t, c.Registry, "iris", "iris.csv")
	_, err := c.Registry.CreateModel(ctx, &registryv1.CreateModelRequest{Model: &registryv1.Model{Name: "iris"}})
	require.NoError(t, err)
	v1 := trainVersion(t, c, "iris", "iris", "logistic")
	setAlias(t, c, "iris", "production", "1")

	dc := gatewayv1.NewDeploymentServiceClient(c.Conn)
	_, err = dc.CreateDeployment(ctx, &gatewayv1.CreateDeploymentRequest{Deployment: &gatewayv1.Deployment{
		Model: "iris@production", MinReplicas: 1, MaxReplicas: 2}})
	require.NoError(t, err)
	eventually(t, time.Minute, "deployment ready", func() bool {
		code, _ := httpDo(t, c, "GET", "/v2/models/iris/ready", nil)
		return code == http.StatusOK
	})

	// The local answer, from the registered artifact.
	var art bytes.Buffer
	st, err := c.Registry.DownloadModelVersion(ctx, &registryv1.DownloadModelVersionRequest{Model: "iris", Version: "1"})
	require.NoError(t, err)
	for {
		m, err := st.Recv()
		if err != nil {
			break
		}
		art.Write(m.GetChunk())
	}
	am, err := artifact.Unmarshal(art.Bytes())
	require.NoError(t, err)
	f, err := dataset.ReadFile("../examples/datasets/iris.csv", dataset.ReadOptions{})
	require.NoError(t, err)
	want := make([]float64, f.NumRows()*am.NumOutputs())
	require.NoError(t, am.NewPredictor().PredictFrame(f, want))
	var x []float64
	for r := range f.NumRows() {
		for _, name := range am.Inputs() {
			col, err := f.Col(name)
			require.NoError(t, err)
			x = append(x, col.Num[r])
		}
	}
	rows, cols := f.NumRows(), len(am.Inputs())

	// gRPC through the gateway.
	ic := inference.NewGRPCInferenceServiceClient(c.Conn)
	resp, err := ic.ModelInfer(ctx, &inference.ModelInferRequest{ModelName: "iris", Inputs: []*inference.ModelInferRequest_InferInputTensor{{
		Name: "input", Datatype: "FP64", Shape: []int64{int64(rows), int64(cols)}, Contents: &inference.InferTensorContents{Fp64Contents: x}}}})
	require.NoError(t, err)
	require.Equal(t, want, resp.Outputs[1].Contents.Fp64Contents)

	// REST v2 with the protocol's JSON.
	code, body := httpDo(t, c, "POST", "/v2/models/iris/infer", map[string]any{"inputs": []any{map[string]any{
		"name": "input", "datatype": "FP64", "shape": []int{rows, cols}, "data": x}}})
	require.Equal(t, http.StatusOK, code, string(body))
	var rest struct {
		ModelName string `json:"model_name"`
		Outputs   []struct {
			Name  string `json:"name"`
			Shape []int  `json:"shape"`
			Data  json.RawMessage
		} `json:"outputs"`
	}
	require.NoError(t, json.Unmarshal(body, &rest))
	var proba []float64
	require.NoError(t, json.Unmarshal(rest.Outputs[1].Data, &proba))
	require.Equal(t, want, proba)
	var labels []string
	require.NoError(t, json.Unmarshal(rest.Outputs[0].Data, &labels))
	require.Equal(t, string(resp.Outputs[0].Contents.BytesContents[0]), labels[0])

	// Metadata says exactly the tensors.
	code, body = httpDo(t, c, "GET", "/v2/models/iris", nil)
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, string(body), `"name":"input"`)
	require.Contains(t, string(body), `"probabilities"`)

	// :predict with instances.
	code, body = httpDo(t, c, "POST", "/v1/models/iris:predict", map[string]any{"instances": [][]float64{x[:cols]}})
	require.Equal(t, http.StatusOK, code, string(body))
	require.Contains(t, string(body), `"predictions":["`+labels[0]+`"]`)

	// The calls went over the transport the gateway was told to use.
	laneCalls := replicaCalls(t, c, "lane")
	grpcCalls := replicaCalls(t, c, "grpc")
	if useLane {
		require.Positive(t, laneCalls)
	} else {
		require.Zero(t, laneCalls)
		require.Positive(t, grpcCalls)
	}

	badInput(t, c, ic, cols)
	if useLane {
		aliasMoveUnderLoad(t, c, ic, dc, x[:cols], cols, v1)
	}
}

func badInput(t *testing.T, c *harness.Cluster, ic inference.GRPCInferenceServiceClient, cols int) {
	one := func(name, dt string, shape []int, data any) map[string]any {
		return map[string]any{"inputs": []any{map[string]any{"name": name, "datatype": dt, "shape": shape, "data": data}}}
	}
	row := make([]float64, cols)
	for _, tc := range []struct {
		path string
		body any
		code int
		msg  string
	}{
		{"/v2/models/iris/infer", one("x", "FP64", []int{1, cols}, row), 400, "inputs[0].name"},
		{"/v2/models/iris/infer", one("input", "INT32", []int{1, cols}, []int{1, 2, 3, 4}), 400, "inputs[0].datatype"},
		{"/v2/models/iris/infer", one("input", "FP64", []int{cols, 1}, row), 400, "inputs[0].shape"},
		{"/v2/models/iris/infer", map[string]any{"inputs": []any{}}, 400, "inputs"},
		{"/v2/models/iris/infer", []byte(`{"inputs": [`), 400, "body"},
		{"/v2/models/nope/infer", one("input", "FP64", []int{1, cols}, row), 404, "nope"},
		{"/v2/models/iris/versions/99/infer", one("input", "FP64", []int{1, cols}, row), 404, "iris/99"},
		{"/v2/models/iris/infer", []byte(`{"inputs":[{"name":"input","data":[` + strings.Repeat("1,", 9<<20) + `1]}]}`), 413, "bytes"},
	} {
		code, body := httpDo(t, c, "POST", tc.path, tc.body)
		require.Equal(t, tc.code, code, "%s: %s", tc.msg, body)
		require.Contains(t, string(body), tc.msg)
	}
	_, err := ic.ModelInfer(t.Context(), &inference.ModelInferRequest{ModelName: "iris"})
	require.Equal(t, codes.InvalidArgument, status.Code(err))
	require.Contains(t, status.Convert(err).Message(), "missing input \"input\"")
}

func aliasMoveUnderLoad(t *testing.T, c *harness.Cluster, ic inference.GRPCInferenceServiceClient, dc gatewayv1.DeploymentServiceClient, row []float64, cols int, v1 int64) {
	v2 := trainVersion(t, c, "iris", "iris", "mlp")
	var ok, failed atomic.Int64
	req := &inference.ModelInferRequest{ModelName: "iris", Inputs: []*inference.ModelInferRequest_InferInputTensor{{
		Name: "input", Datatype: "FP64", Shape: []int64{1, int64(cols)}, Contents: &inference.InferTensorContents{Fp64Contents: row}}}}
	stop := clients(4, func() bool {
		if _, err := ic.ModelInfer(t.Context(), req); err != nil {
			failed.Add(1)
			t.Logf("request failed: %v", err)
		} else {
			ok.Add(1)
		}
		return true
	})
	setAlias(t, c, "iris", "production", "2")
	eventually(t, time.Minute, "replicas on the new version", func() bool {
		d, err := dc.GetDeployment(t.Context(), &gatewayv1.GetDeploymentRequest{Name: "iris"})
		if err != nil || d.Deployment.GetStatus().GetVersion() != v2 || d.Deployment.State != "READY" {
			return false
		}
		for _, r := range d.Deployment.Status.Replicas {
			if r.Version != v2 {
				return false
			}
		}
		return len(d.Deployment.Status.Replicas) > 0
	})
	stop()
	require.Zero(t, failed.Load(), "failed requests during the rollout (%d succeeded)", ok.Load())
	require.Positive(t, ok.Load())
	t.Logf("%d requests during the rollout, none failed", ok.Load())
	d, err := dc.GetDeployment(t.Context(), &gatewayv1.GetDeploymentRequest{Name: "iris"})
	require.NoError(t, err)
	require.Equal(t, v1, d.Deployment.Status.PreviousVersion)
	d2, err := dc.RollbackDeployment(t.Context(), &gatewayv1.RollbackDeploymentRequest{Name: "iris"})
	require.NoError(t, err)
	require.Equal(t, "iris@1", d2.Deployment.Model)
}

// replicaCalls reads the gateway's count of successful calls forwarded
// to replicas over transport from /metrics.
func replicaCalls(t *testing.T, c *harness.Cluster, transport string) float64 {
	t.Helper()
	code, body := httpDo(t, c, "GET", "/metrics", nil)
	require.Equal(t, http.StatusOK, code)
	prefix := `bmaas_gateway_replica_calls_total{outcome="ok",transport="` + transport + `"} `
	for line := range strings.SplitSeq(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, prefix); ok {
			f, err := strconv.ParseFloat(v, 64)
			require.NoError(t, err, line)
			return f
		}
	}
	return 0
}

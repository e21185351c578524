//go:build integration

package tests

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	gatewayv1 "github.com/bmaas/bmaas/api/bmaas/gateway/v1"
	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
	"github.com/bmaas/bmaas/api/inference"
	"github.com/bmaas/bmaas/internal/app"
	"github.com/bmaas/bmaas/pkg/apierr"
	"github.com/bmaas/bmaas/pkg/serving"
	"github.com/bmaas/bmaas/services/traineragent/endpointkeys"
	"github.com/bmaas/bmaas/tests/harness"
)

// restReplica is a KServe v2 REST server standing in for a process
// replica: every FP32 input x comes back as x_out doubled, binary data
// read and written as the request says; it records the authorization
// each call brings.
type restReplica struct {
	mu   sync.Mutex
	auth []string
	last []byte
}

func (r *restReplica) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	r.auth, r.last = append(r.auth, req.Header.Get("Authorization")), body
	r.mu.Unlock()
	if req.URL.Path == "/v2" {
		_, _ = io.WriteString(w, `{"name":"rest-replica","version":"1","extensions":["binary_tensor_data"]}`)
		return
	}
	name := strings.Split(strings.TrimPrefix(req.URL.Path, "/v2/models/"), "/")[0]
	if req.Method == http.MethodGet {
		_, _ = io.WriteString(w, `{"name":"`+name+`","versions":["1"],"platform":"rest-replica","inputs":[{"name":"x","datatype":"FP32","shape":[-1]}],"outputs":[]}`)
		return
	}
	hl, err := serving.HeaderLength(req.Header.Get(serving.HeaderContentLength), len(body))
	in := &inference.ModelInferRequest{}
	if err == nil {
		err = serving.DecodeInferRequestBinary(body, hl, in)
	}
	if err == nil && in.Inputs[0].Datatype != "FP32" {
		err = apierr.Invalid("inputs[0].datatype", "must be FP32")
	}
	if err != nil {
		apierr.WriteKServe(w, err)
		return
	}
	out := &inference.ModelInferResponse{ModelName: name, ModelVersion: "1"}
	for i, t := range in.Inputs {
		x := t.Contents.GetFp32Contents()
		if i < len(in.RawInputContents) {
			c, _ := serving.RawContents("FP32", in.RawInputContents[i])
			x = c.Fp32Contents
		}
		y := make([]float32, len(x))
		for j, v := range x {
			y[j] = 2 * v
		}
		out.Outputs = append(out.Outputs, &inference.ModelInferResponse_InferOutputTensor{Name: t.Name + "_out", Datatype: "FP32",
			Shape: t.Shape, Contents: &inference.InferTensorContents{Fp32Contents: y}})
	}
	b, hl := serving.AppendInferResponseBinary(nil, out, serving.BinaryOutputs(in))
	if hl < len(b) {
		w.Header().Set(serving.HeaderContentLength, strconv.Itoa(hl))
	}
	_, _ = w.Write(b)
}

// TestGatewayBridgesToV2RESTReplicas: a deployment whose only replica
// speaks KServe v2 REST (an endpoint record written as the agent writes
// one, for a Go server in the test) answers gRPC ModelInfer and model
// metadata, and REST with JSON and with binary tensor data (passed
// through as it came), through the whole gateway; the replica gets its
// own token; the calls count under
// transport http; the replica's refusal reaches a gRPC client as
// InvalidArgument with its message.
func TestGatewayBridgesToV2RESTReplicas(t *testing.T) {
	t.Parallel()
	// No trainer agent: the endpoint record is the deployment's only
	// replica.
	c := harness.Start(t, withFastGateway(), func(cfg *app.Config) {
		cfg.Targets = slices.DeleteFunc(slices.Clone(cfg.Targets), func(s string) bool { return s == app.TargetTrainerAgent })
	})
	ctx := t.Context()
	v := uploadVersion(t, c, "bridged", registryv1.ModelFormat_MODEL_FORMAT_NATIVE, []byte("not run: the replica is a stand-in"))
	dc := gatewayv1.NewDeploymentServiceClient(c.Conn)
	_, err := dc.CreateDeployment(ctx, &gatewayv1.CreateDeploymentRequest{Deployment: &gatewayv1.Deployment{
		Model: "bridged@" + strconv.FormatInt(v, 10), MinReplicas: 1, MaxReplicas: 1}})
	require.NoError(t, err)

	rep := &restReplica{}
	srv := httptest.NewServer(rep)
	t.Cleanup(srv.Close)
	addr := strings.TrimPrefix(srv.URL, "http://")
	ep, err := proto.Marshal(&gatewayv1.Endpoint{Deployment: "bridged", Replica: "rest-0", Version: v, Token: "replica-token",
		Address: addr, HttpAddress: addr, Protocols: []string{"v2-rest"}})
	require.NoError(t, err)
	_, err = c.EtcdClient(t).Put(ctx, endpointkeys.Key("bridged", "rest-0"), string(ep))
	require.NoError(t, err)
	eventually(t, 30*time.Second, "the endpoint routed", func() bool {
		code, _ := httpDo(t, c, "GET", "/v2/models/bridged/ready", nil)
		return code == http.StatusOK
	})

	// gRPC, large enough to go to the replica as binary data.
	x := make([]float32, 1000)
	for i := range x {
		x[i] = float32(i) / 3
	}
	ic := inference.NewGRPCInferenceServiceClient(c.Conn)
	resp, err := ic.ModelInfer(ctx, &inference.ModelInferRequest{ModelName: "bridged", Inputs: []*inference.ModelInferRequest_InferInputTensor{{
		Name: "x", Datatype: "FP32", Shape: []int64{1000}, Contents: &inference.InferTensorContents{Fp32Contents: x}}}})
	require.NoError(t, err)
	got := resp.Outputs[0].Contents.GetFp32Contents()
	if len(resp.RawOutputContents) > 0 {
		c, err := serving.RawContents("FP32", resp.RawOutputContents[0])
		require.NoError(t, err)
		got = c.Fp32Contents
	}
	require.Len(t, got, 1000)
	for i, v := range x {
		require.Equal(t, 2*v, got[i])
	}
	md, err := ic.ModelMetadata(ctx, &inference.ModelMetadataRequest{Name: "bridged"})
	require.NoError(t, err)
	require.Equal(t, "rest-replica", md.Platform)
	_, err = ic.ModelInfer(ctx, &inference.ModelInferRequest{ModelName: "bridged", Inputs: []*inference.ModelInferRequest_InferInputTensor{{
		Name: "x", Datatype: "FP64", Shape: []int64{1}, Contents: &inference.InferTensorContents{Fp64Contents: []float64{1}}}}})
	require.Equal(t, codes.InvalidArgument, status.Code(err), "%v", err)
	require.Contains(t, status.Convert(err).Message(), "inputs[0].datatype: must be FP32")

	// REST with JSON, then the same numbers as binary data both ways.
	code, body := httpDo(t, c, "POST", "/v2/models/bridged/infer", map[string]any{"inputs": []any{map[string]any{
		"name": "x", "datatype": "FP32", "shape": []int{3}, "data": []float32{1.5, -2, 0.25}}}})
	require.Equal(t, http.StatusOK, code, "%s", body)
	require.Contains(t, string(body), `"data":[3,-4,0.5]`)
	header := `{"parameters":{"binary_data_output":true},"inputs":[{"name":"x","datatype":"FP32","shape":[3],"parameters":{"binary_data_size":12}}]}`
	var bin []byte
	for _, v := range []float32{1.5, -2, 0.25} {
		bin = binary.LittleEndian.AppendUint32(bin, math.Float32bits(v))
	}
	req, err := http.NewRequestWithContext(ctx, "POST", c.HTTP+"/v2/models/bridged/infer", bytes.NewReader(append([]byte(header), bin...)))
	require.NoError(t, err)
	req.Header.Set(serving.HeaderContentLength, strconv.Itoa(len(header)))
	req.Header.Set("Content-Type", "application/octet-stream")
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	hresp, err := c.HTTPClient.Do(req)
	require.NoError(t, err)
	defer hresp.Body.Close()
	body, err = io.ReadAll(hresp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, hresp.StatusCode, "%s", body)
	hl, err := strconv.Atoi(hresp.Header.Get(serving.HeaderContentLength))
	require.NoError(t, err, "a binary answer says its JSON's length")
	var out struct {
		Outputs []struct {
			Parameters map[string]int `json:"parameters"`
		} `json:"outputs"`
	}
	require.NoError(t, json.Unmarshal(body[:hl], &out))
	require.Equal(t, 12, out.Outputs[0].Parameters["binary_data_size"])
	var y []float32
	for i := hl; i < len(body); i += 4 {
		y = append(y, math.Float32frombits(binary.LittleEndian.Uint32(body[i:])))
	}
	require.Equal(t, []float32{3, -4, 0.5}, y)
	rep.mu.Lock()
	require.Equal(t, append([]byte(header), bin...), rep.last, "the REST body reaches the replica as it came")
	rep.mu.Unlock()

	rep.mu.Lock()
	auth := slices.Clone(rep.auth)
	rep.mu.Unlock()
	require.NotEmpty(t, auth)
	code, body = httpDo(t, c, "GET", "/v2", nil)
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, string(body), `"extensions":["binary_tensor_data"]`, "the gateway says it takes binary data")
	for _, a := range auth {
		require.Equal(t, "Bearer replica-token", a, "the replica gets its own token, never the cluster's")
	}
	require.Positive(t, replicaCalls(t, c, "http"))
}

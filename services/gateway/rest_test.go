package gateway

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/bmaas/bmaas/api/inference"
	"github.com/bmaas/bmaas/pkg/serving"
)

// A body over the limit is a 413 in KServe v2's shape on /v2 and in the
// REST API's on :predict, and the connection closes after the answer
// whether the length was declared or not (chunked).
func TestBodyOverTheLimitClosesTheConnection(t *testing.T) {
	t.Parallel()
	a := restAPI{maxBytes: 8}
	for _, declared := range []bool{true, false} {
		r := httptest.NewRequest("POST", "/v2/models/m/infer", strings.NewReader(`{"inputs":[]}`))
		if !declared {
			r.ContentLength = -1
		}
		r.SetPathValue("name", "m")
		w := httptest.NewRecorder()
		a.restInfer(w, r)
		require.Equal(t, http.StatusRequestEntityTooLarge, w.Code)
		require.Equal(t, "close", w.Header().Get("Connection"), "declared %v", declared)
		require.Contains(t, w.Body.String(), `{"error":"request body`)

		r = httptest.NewRequest("POST", "/v1/models/m:predict", strings.NewReader(`{"instances":[[1]]}`))
		if !declared {
			r.ContentLength = -1
		}
		w = httptest.NewRecorder()
		a.restPredict(w, r, "m")
		require.Equal(t, http.StatusRequestEntityTooLarge, w.Code)
		require.Equal(t, "close", w.Header().Get("Connection"), "declared %v", declared)
		require.Contains(t, w.Body.String(), `"code":8,"message":"request body`)
	}
}

// bridgeDP is the gateway's data plane reduced to one v2 REST replica:
// Infer goes through callReplica as Service.Infer's frames do.
type bridgeDP struct {
	t *testing.T
	s *Service
	b *backend
}

func (d bridgeDP) Infer(_ context.Context, req *inference.ModelInferRequest) (*inference.ModelInferResponse, error) {
	return inferVia(d.t, d.s, d.b, req)
}

func (d bridgeDP) ModelMetadata(ctx context.Context, name, version string) (*inference.ModelMetadataResponse, error) {
	return d.s.bridgeMetadata(ctx, d.b, name, version)
}

func (d bridgeDP) ModelReady(context.Context, string, string) (bool, error) { return true, nil }

// restDo posts body to path with an Inference-Header-Content-Length
// when headerLen is not -1.
func restDo(t *testing.T, mux *http.ServeMux, method, path string, body []byte, headerLen int) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, path, bytes.NewReader(body))
	if headerLen >= 0 {
		r.Header.Set("Inference-Header-Content-Length", strconv.Itoa(headerLen))
	}
	w := httptest.NewRecorder()
	mux.ServeHTTP(w, r)
	return w
}

// restOutputs reads a REST answer's outputs by name: JSON data as
// float64s (FP32 ones rounded to float32) or strings, binary data
// decoded by datatype.
func restOutputs(t *testing.T, w *httptest.ResponseRecorder) map[string][]any {
	body := w.Body.Bytes()
	hl := len(body)
	if h := w.Header().Get("Inference-Header-Content-Length"); h != "" {
		var err error
		hl, err = strconv.Atoi(h)
		require.NoError(t, err)
	}
	var resp struct {
		Outputs []struct {
			Name       string         `json:"name"`
			Datatype   string         `json:"datatype"`
			Parameters map[string]any `json:"parameters"`
			Data       []any          `json:"data"`
		} `json:"outputs"`
	}
	require.NoError(t, json.Unmarshal(body[:hl], &resp), "%s", body)
	out := map[string][]any{}
	off := hl
	le := binary.LittleEndian
	for _, o := range resp.Outputs {
		size, ok := o.Parameters["binary_data_size"].(float64)
		if !ok {
			if o.Datatype == "FP32" {
				// Compared as the float32 it is.
				for i, v := range o.Data {
					o.Data[i] = float64(float32(v.(float64)))
				}
			}
			out[o.Name] = o.Data
			continue
		}
		raw := body[off : off+int(size)]
		off += int(size)
		var vs []any
		for i := 0; i < len(raw); {
			switch o.Datatype {
			case "FP32":
				vs, i = append(vs, float64(math.Float32frombits(le.Uint32(raw[i:])))), i+4
			case "FP64":
				vs, i = append(vs, math.Float64frombits(le.Uint64(raw[i:]))), i+8
			case "INT64":
				vs, i = append(vs, float64(int64(le.Uint64(raw[i:])))), i+8
			case "BYTES":
				n := int(le.Uint32(raw[i:]))
				vs, i = append(vs, string(raw[i+4:i+4+n])), i+4+n
			}
		}
		out[o.Name] = vs
	}
	require.Equal(t, len(body), off, "the binary part is the outputs' sizes")
	return out
}

// REST ingress to a v2 REST replica: the same numbers sent as JSON and as
// binary data (FP32, INT64, BYTES) answer the same numbers, as JSON, as
// binary data for every output (binary_data_output), or for the outputs
// that ask (binary_data); sizes that do not add up name the field.
func TestRESTBinaryDataEndToEnd(t *testing.T) {
	t.Parallel()
	rep := newV2Replica(t)
	s, b := bridgeTo(rep.addr(), "v2-rest")
	mux := http.NewServeMux()
	restAPI{dp: bridgeDP{t: t, s: s, b: b}, maxBytes: 1 << 20}.register(mux, http.NotFoundHandler())

	x := []float32{0.5, -1.25, 3, 1e-3, 7, 8}
	ids := []int64{1, -2, 1 << 50}
	jsonBody := `{"inputs":[{"name":"x","datatype":"FP32","shape":[2,3],"data":[[0.5,-1.25,3],[0.001,7,8]]},` +
		`{"name":"ids","datatype":"INT64","shape":[3],"data":[1,-2,1125899906842624]},` +
		`{"name":"s","datatype":"BYTES","shape":[1],"data":["hé"]}]}`
	w := restDo(t, mux, "POST", "/v2/models/m/infer", []byte(jsonBody), -1)
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	require.Equal(t, "application/json", w.Header().Get("Content-Type"))
	want := restOutputs(t, w)
	require.Len(t, want["x_out"], 6)
	for i, v := range x {
		require.Equal(t, float64(2*v), want["x_out"][i], "element %d", i)
	}
	require.Equal(t, []any{"hé!"}, want["s_out"])

	var bin []byte
	le := binary.LittleEndian
	for _, v := range x {
		bin = le.AppendUint32(bin, math.Float32bits(v))
	}
	for _, v := range ids {
		bin = le.AppendUint64(bin, uint64(v))
	}
	bin = append(le.AppendUint32(bin, 3), "hé"...)
	header := func(params, outputs string) string {
		return `{` + params + `"inputs":[{"name":"x","datatype":"FP32","shape":[2,3],"parameters":{"binary_data_size":24}},` +
			`{"name":"ids","datatype":"INT64","shape":[3],"parameters":{"binary_data_size":24}},` +
			`{"name":"s","datatype":"BYTES","shape":[1],"parameters":{"binary_data_size":7}}]` + outputs + `}`
	}
	for _, c := range []struct {
		params, outputs string
		binary          []string
	}{
		{},
		{params: `"parameters":{"binary_data_output":true},`, binary: []string{"x_out", "ids_out", "s_out"}},
		{outputs: `,"outputs":[{"name":"x_out","parameters":{"binary_data":true}},{"name":"ids_out"},{"name":"s_out"}]`, binary: []string{"x_out"}},
	} {
		h := header(c.params, c.outputs)
		w := restDo(t, mux, "POST", "/v2/models/m/infer", append([]byte(h), bin...), len(h))
		require.Equal(t, http.StatusOK, w.Code, w.Body.String())
		got := restOutputs(t, w)
		require.Equal(t, want, got, "%s", h)
		if len(c.binary) == 0 {
			require.Empty(t, w.Header().Get("Inference-Header-Content-Length"))
			continue
		}
		require.Equal(t, "application/octet-stream", w.Header().Get("Content-Type"))
		hl, _ := strconv.Atoi(w.Header().Get("Inference-Header-Content-Length"))
		for _, name := range c.binary {
			require.Contains(t, w.Body.String()[:hl], `{"name":"`+name+`","datatype":`, name)
			require.NotContains(t, w.Body.String()[:hl], `"`+name+`","datatype":"FP32","shape":[2,3],"data"`, name)
		}
	}

	h := header("", "")
	w = restDo(t, mux, "POST", "/v2/models/m/infer", append([]byte(h), bin[:40]...), len(h))
	require.Equal(t, http.StatusBadRequest, w.Code)
	require.Contains(t, w.Body.String(), "inputs[1].parameters.binary_data_size")
	w = restDo(t, mux, "POST", "/v2/models/m/infer", append([]byte(h), bin...), len(h)+len(bin)+1)
	require.Equal(t, http.StatusBadRequest, w.Code)
	require.Contains(t, w.Body.String(), "Inference-Header-Content-Length")

	w = restDo(t, mux, "GET", "/v2/models/m", nil, -1)
	require.Equal(t, http.StatusOK, w.Code)
	require.Contains(t, w.Body.String(), `"platform":"test"`)
	w = restDo(t, mux, "POST", "/v2/models/bad/infer", []byte(jsonBody), -1)
	require.Equal(t, http.StatusBadRequest, w.Code)
	require.Contains(t, w.Body.String(), "input x is too short")
}

// passDP is bridgeDP with the gateway's REST pass-through: inference
// bodies go to its one replica through restCallOn.
type passDP struct{ bridgeDP }

func (d passDP) inferREST(ctx context.Context, rc *restCall) error {
	return d.s.restCallOn(ctx, d.b, rc)
}

// REST ingress to a replica that speaks v2 REST passes the body through
// as it came (binary data and its header included) and the replica's
// answer back as it came; the replica's refusal keeps its message.
func TestRESTPassThroughToV2RESTReplica(t *testing.T) {
	t.Parallel()
	rep := newV2Replica(t)
	s, b := bridgeTo(rep.addr(), "v2-rest")
	mux := http.NewServeMux()
	restAPI{dp: passDP{bridgeDP{t: t, s: s, b: b}}, maxBytes: 1 << 20}.register(mux, http.NotFoundHandler())

	header := `{"parameters":{"binary_data_output":true},"inputs":[{"name":"x","datatype":"FP32","shape":[2],"parameters":{"binary_data_size":8}}]}`
	body := append([]byte(header), 0, 0, 0x80, 0x3f, 0, 0, 0, 0x40) // 1, 2
	w := restDo(t, mux, "POST", "/v2/models/m/versions/4/infer", body, len(header))
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	require.Equal(t, body, rep.lastBody(), "the body reaches the replica as it came")
	require.Equal(t, replicaCall{method: "POST", path: "/v2/models/m/versions/4/infer", auth: "Bearer tok", binary: true}, rep.last())

	dr, err := http.NewRequest("POST", rep.srv.URL+"/v2/models/m/versions/4/infer", bytes.NewReader(body))
	require.NoError(t, err)
	dr.Header.Set("Inference-Header-Content-Length", strconv.Itoa(len(header)))
	direct, err := http.DefaultClient.Do(dr)
	require.NoError(t, err)
	defer direct.Body.Close()
	want, err := io.ReadAll(direct.Body)
	require.NoError(t, err)
	require.Equal(t, want, w.Body.Bytes(), "the answer comes back as it came")
	require.Equal(t, direct.Header.Get("Inference-Header-Content-Length"), w.Header().Get("Inference-Header-Content-Length"))
	require.Equal(t, map[string][]any{"x_out": {2.0, 4.0}}, restOutputs(t, w))

	w = restDo(t, mux, "POST", "/v2/models/bad/infer", []byte(`{"inputs":[]}`), -1)
	require.Equal(t, http.StatusBadRequest, w.Code)
	require.Contains(t, w.Body.String(), "input x is too short")
	require.Equal(t, 1.0, testutil.ToFloat64(s.met.httpOK))
	require.Equal(t, 1.0, testutil.ToFloat64(s.met.httpErr))
}

// modelDP is a data plane of one model served in this process, as a
// built-in replica serves it.
type modelDP struct{ m *serving.Model }

func (d modelDP) Infer(ctx context.Context, req *inference.ModelInferRequest) (*inference.ModelInferResponse, error) {
	return d.m.Infer(ctx, req)
}

func (d modelDP) ModelMetadata(context.Context, string, string) (*inference.ModelMetadataResponse, error) {
	return nil, nil
}

func (d modelDP) ModelReady(context.Context, string, string) (bool, error) { return true, nil }

// REST binary data to a built-in replica (an ONNX classifier): the rows
// sent as binary data answer the labels and probabilities the same rows
// answer as JSON, as JSON or as binary data.
func TestRESTBinaryDataToABuiltinModel(t *testing.T) {
	t.Parallel()
	m, err := serving.Load("../../examples/models/logreg-v1.onnx", serving.Options{Name: "bc", Version: 1, Format: serving.FormatONNX,
		Classes: []string{"benign", "malignant"}})
	require.NoError(t, err)
	t.Cleanup(m.Close)
	mux := http.NewServeMux()
	restAPI{dp: modelDP{m}, maxBytes: 1 << 20}.register(mux, http.NotFoundHandler())

	x := make([]float32, 3*30)
	for i := range x {
		x[i] = float32(i%11) * 0.05
	}
	jb, err := json.Marshal(map[string]any{"inputs": []any{map[string]any{"name": "input", "datatype": "FP32", "shape": []int{3, 30}, "data": x}}})
	require.NoError(t, err)
	w := restDo(t, mux, "POST", "/v2/models/bc/infer", jb, -1)
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	want := restOutputs(t, w)
	require.Len(t, want["predictions"], 3)
	require.Len(t, want["probabilities"], 6)

	var bin []byte
	for _, v := range x {
		bin = binary.LittleEndian.AppendUint32(bin, math.Float32bits(v))
	}
	for _, params := range []string{"", `"parameters":{"binary_data_output":true},`} {
		h := `{` + params + `"inputs":[{"name":"input","datatype":"FP32","shape":[3,30],"parameters":{"binary_data_size":360}}]}`
		w := restDo(t, mux, "POST", "/v2/models/bc/infer", append([]byte(h), bin...), len(h))
		require.Equal(t, http.StatusOK, w.Code, w.Body.String())
		require.Equal(t, want, restOutputs(t, w), params)
		require.Equal(t, params != "", w.Header().Get("Inference-Header-Content-Length") != "", params)
	}
}

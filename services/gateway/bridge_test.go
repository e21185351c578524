package gateway

import (
	"encoding/binary"
	"encoding/json"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	gatewayv1 "github.com/bmaas/bmaas/api/bmaas/gateway/v1"
	"github.com/bmaas/bmaas/api/inference"
	"github.com/bmaas/bmaas/pkg/grpcsrv"
	"github.com/bmaas/bmaas/pkg/serving"
	"github.com/bmaas/bmaas/services/traineragent/endpointkeys"
)

// v2Replica is a KServe v2 REST server written for the tests apart from
// pkg/serving's codec. Each input x comes back as output x_out: numbers
// doubled, strings with "!" appended; binary data is read where the
// request has it and written when binary_data_output asks. Some model
// names answer errors.
type v2Replica struct {
	srv *httptest.Server
	// noBinary leaves the binary data extension out of its metadata.
	noBinary bool
	mu       sync.Mutex
	// calls records each call: method, path, authorization and whether
	// its body had binary data; bodies, the bodies.
	calls  []replicaCall
	bodies [][]byte
}

type replicaCall struct {
	method, path, auth string
	binary             bool
}

func newV2Replica(t *testing.T) *v2Replica {
	r := &v2Replica{}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *v2Replica) addr() string { return strings.TrimPrefix(r.srv.URL, "http://") }

// lastBody is the body of the last call.
func (r *v2Replica) lastBody() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.bodies[len(r.bodies)-1]
}

func (r *v2Replica) last() replicaCall {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.calls[len(r.calls)-1]
}

func (r *v2Replica) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	hl := len(body)
	if h := req.Header.Get("Inference-Header-Content-Length"); h != "" {
		hl, _ = strconv.Atoi(h)
	}
	r.mu.Lock()
	r.calls = append(r.calls, replicaCall{method: req.Method, path: req.URL.Path, auth: req.Header.Get("Authorization"), binary: hl < len(body)})
	r.bodies = append(r.bodies, body)
	r.mu.Unlock()
	if req.URL.Path == "/v2" {
		ext := `["binary_tensor_data"]`
		if r.noBinary {
			ext = `[]`
		}
		_, _ = io.WriteString(w, `{"name":"test","version":"1","extensions":`+ext+`}`)
		return
	}
	name := strings.Split(strings.TrimPrefix(req.URL.Path, "/v2/models/"), "/")[0]
	fail := func(code int, body string) {
		w.WriteHeader(code)
		_, _ = io.WriteString(w, body)
	}
	switch name {
	case "bad":
		fail(http.StatusBadRequest, `{"error":"input x is too short"}`)
		return
	case "busy":
		fail(http.StatusServiceUnavailable, `{"error":"loading"}`)
		return
	case "locked":
		fail(http.StatusUnauthorized, `{"error":"bad token"}`)
		return
	case "broken":
		fail(http.StatusInternalServerError, `boom`)
		return
	case "garbled":
		fail(http.StatusOK, `not json`)
		return
	}
	if req.Method == http.MethodGet {
		_, _ = io.WriteString(w, `{"name":"`+name+`","versions":["1",2],"platform":"test",`+
			`"inputs":[{"name":"x","datatype":"FP32","shape":[-1,4]}],"outputs":[{"name":"x_out","datatype":"FP32","shape":[-1,4]}]}`)
		return
	}
	var in struct {
		Parameters map[string]any `json:"parameters"`
		Inputs     []struct {
			Name       string          `json:"name"`
			Datatype   string          `json:"datatype"`
			Shape      []int64         `json:"shape"`
			Parameters map[string]any  `json:"parameters"`
			Data       json.RawMessage `json:"data"`
		} `json:"inputs"`
	}
	if err := json.Unmarshal(body[:hl], &in); err != nil {
		fail(http.StatusBadRequest, `{"error":"bad json"}`)
		return
	}
	binOut := in.Parameters["binary_data_output"] == true
	off := hl
	var outs []map[string]any
	var tail []byte
	le := binary.LittleEndian
	for _, t := range in.Inputs {
		var nums []float64
		var strs []string
		if size, ok := t.Parameters["binary_data_size"].(float64); ok {
			raw := body[off : off+int(size)]
			off += int(size)
			for i := 0; i < len(raw); {
				switch t.Datatype {
				case "FP32":
					nums, i = append(nums, float64(math.Float32frombits(le.Uint32(raw[i:])))), i+4
				case "FP64":
					nums, i = append(nums, math.Float64frombits(le.Uint64(raw[i:]))), i+8
				case "INT64":
					nums, i = append(nums, float64(int64(le.Uint64(raw[i:])))), i+8
				case "BYTES":
					n := int(le.Uint32(raw[i:]))
					strs, i = append(strs, string(raw[i+4:i+4+n])), i+4+n
				}
			}
		} else {
			var v []any
			_ = json.Unmarshal(t.Data, &v)
			var flat func([]any)
			flat = func(xs []any) {
				for _, x := range xs {
					switch e := x.(type) {
					case []any:
						flat(e)
					case float64:
						nums = append(nums, e)
					case string:
						strs = append(strs, e)
					}
				}
			}
			flat(v)
		}
		o := map[string]any{"name": t.Name + "_out", "datatype": t.Datatype, "shape": t.Shape}
		var data []any
		var raw []byte
		for _, v := range nums {
			switch t.Datatype {
			case "FP32":
				data, raw = append(data, 2*v), le.AppendUint32(raw, math.Float32bits(float32(2*v)))
			case "FP64":
				data, raw = append(data, 2*v), le.AppendUint64(raw, math.Float64bits(2*v))
			case "INT64":
				data, raw = append(data, int64(2*v)), le.AppendUint64(raw, uint64(int64(2*v)))
			}
		}
		for _, s := range strs {
			data = append(data, s+"!")
			raw = append(le.AppendUint32(raw, uint32(len(s)+1)), s+"!"...)
		}
		if binOut {
			o["parameters"] = map[string]any{"binary_data_size": len(raw)}
			tail = append(tail, raw...)
		} else {
			o["data"] = data
		}
		outs = append(outs, o)
	}
	head, _ := json.Marshal(map[string]any{"model_name": name, "model_version": "1", "outputs": outs})
	if binOut {
		w.Header().Set("Inference-Header-Content-Length", strconv.Itoa(len(head)))
	}
	_, _ = w.Write(append(head, tail...))
}

// bridgeTo is a gateway core (metrics only) and a backend for a replica
// at addr that speaks protocols.
func bridgeTo(addr string, protocols ...string) (*Service, *backend) {
	ep := &gatewayv1.Endpoint{Deployment: "m", Replica: "r1", Version: 1, Token: "tok", HttpAddress: addr, Protocols: protocols}
	return &Service{met: newMetrics(nil)}, &backend{ep: ep, http: newHTTPReplica(addr, ep.Token)}
}

// inferVia sends req as gRPC's pass-through does: a frame to callReplica.
func inferVia(t *testing.T, s *Service, b *backend, req *inference.ModelInferRequest) (*inference.ModelInferResponse, error) {
	wire, err := proto.Marshal(req)
	require.NoError(t, err)
	out, err := s.callReplica(t.Context(), b, grpcsrv.FrameOf(mem.SliceBuffer(wire)))
	if err != nil {
		return nil, err
	}
	defer out.Free()
	resp := &inference.ModelInferResponse{}
	require.NoError(t, proto.Unmarshal(out.Bytes(), resp))
	return resp, nil
}

// outputContents are an output's contents, decoded from raw when raw.
func outputContents(t *testing.T, resp *inference.ModelInferResponse, i int) *inference.InferTensorContents {
	if i < len(resp.RawOutputContents) {
		c, err := serving.RawContents(resp.Outputs[i].Datatype, resp.RawOutputContents[i])
		require.NoError(t, err)
		return c
	}
	return resp.Outputs[i].Contents
}

// gRPC ModelInfer to a replica that speaks v2 REST only: small tensors go
// as JSON and come back as contents; large ones (and raw contents) go as
// binary data and come back as raw contents when the server's metadata
// lists the extension, as JSON when not; FP32, FP64, INT64 and BYTES
// keep their values; the replica gets its own token and the pinned
// version's path.
func TestBridgeInferJSONAndBinary(t *testing.T) {
	t.Parallel()
	rep := newV2Replica(t)
	s, b := bridgeTo(rep.addr(), "v2-rest")
	small := &inference.ModelInferRequest{ModelName: "m", Inputs: []*inference.ModelInferRequest_InferInputTensor{
		{Name: "f32", Datatype: "FP32", Shape: []int64{2, 2}, Contents: &inference.InferTensorContents{Fp32Contents: []float32{1.5, -2, 3.25, 1e-7}}},
		{Name: "f64", Datatype: "FP64", Shape: []int64{2}, Contents: &inference.InferTensorContents{Fp64Contents: []float64{0.1, 1.0 / 3}}},
		{Name: "i64", Datatype: "INT64", Shape: []int64{2}, Contents: &inference.InferTensorContents{Int64Contents: []int64{1 << 40, -5}}},
		{Name: "s", Datatype: "BYTES", Shape: []int64{2}, Contents: &inference.InferTensorContents{BytesContents: [][]byte{[]byte("a"), []byte("ü")}}},
	}}
	resp, err := inferVia(t, s, b, small)
	require.NoError(t, err)
	require.Equal(t, replicaCall{method: "POST", path: "/v2/models/m/infer", auth: "Bearer tok"}, rep.last())
	require.Empty(t, resp.RawOutputContents)
	require.Equal(t, "m", resp.ModelName)
	require.Equal(t, []float32{3, -4, 6.5, 2e-7}, resp.Outputs[0].Contents.Fp32Contents)
	require.Equal(t, []int64{2, 2}, resp.Outputs[0].Shape)
	require.Equal(t, []float64{0.2, 2.0 / 3}, resp.Outputs[1].Contents.Fp64Contents)
	require.Equal(t, []int64{1 << 41, -10}, resp.Outputs[2].Contents.Int64Contents)
	require.Equal(t, [][]byte{[]byte("a!"), []byte("ü!")}, resp.Outputs[3].Contents.BytesContents)

	// Large: 512 FP32 (2 KiB) and 300 INT64 as raw contents, with small
	// FP64 and BYTES beside them.
	x := make([]float32, 512)
	ids := make([]int64, 300)
	for i := range x {
		x[i] = float32(i) / 7
	}
	for i := range ids {
		ids[i] = int64(i) * -3
	}
	big := &inference.ModelInferRequest{ModelName: "m", ModelVersion: "3", Inputs: []*inference.ModelInferRequest_InferInputTensor{
		{Name: "f32", Datatype: "FP32", Shape: []int64{1, 512}},
		{Name: "i64", Datatype: "INT64", Shape: []int64{300}},
		{Name: "f64", Datatype: "FP64", Shape: []int64{1}},
		{Name: "s", Datatype: "BYTES", Shape: []int64{1}},
	}}
	for _, c := range []*inference.InferTensorContents{{Fp32Contents: x}, {Int64Contents: ids}, {Fp64Contents: []float64{-1.25}}, {BytesContents: [][]byte{[]byte("z")}}} {
		big.RawInputContents = append(big.RawInputContents, serving.AppendRaw(nil, big.Inputs[len(big.RawInputContents)].Datatype, c))
	}
	resp, err = inferVia(t, s, b, big)
	require.NoError(t, err)
	require.Equal(t, replicaCall{method: "POST", path: "/v2/models/m/versions/3/infer", auth: "Bearer tok", binary: true}, rep.last())
	require.Len(t, resp.RawOutputContents, 4, "binary outputs come back raw")
	got := outputContents(t, resp, 0).Fp32Contents
	require.Len(t, got, 512)
	for i, v := range x {
		require.Equal(t, 2*v, got[i], "element %d", i)
	}
	gotIDs := outputContents(t, resp, 1).Int64Contents
	for i, v := range ids {
		require.Equal(t, 2*v, gotIDs[i], "element %d", i)
	}
	require.Equal(t, []float64{-2.5}, outputContents(t, resp, 2).Fp64Contents)
	require.Equal(t, [][]byte{[]byte("z!")}, outputContents(t, resp, 3).BytesContents)
	require.Equal(t, 2.0, testutil.ToFloat64(s.met.httpOK))
	metadataCalls := 0
	rep.mu.Lock()
	calls := slices.Clone(rep.calls)
	rep.mu.Unlock()
	for _, c := range calls {
		if c.path == "/v2" {
			metadataCalls++
		}
	}
	require.Equal(t, 1, metadataCalls, "the server metadata is asked once")

	// A server whose metadata does not list the extension gets JSON
	// whatever the size, and the same numbers back.
	plain := newV2Replica(t)
	plain.noBinary = true
	s, b = bridgeTo(plain.addr(), "v2-rest")
	resp, err = inferVia(t, s, b, big)
	require.NoError(t, err)
	require.Equal(t, replicaCall{method: "POST", path: "/v2/models/m/versions/3/infer", auth: "Bearer tok"}, plain.last())
	require.Empty(t, resp.RawOutputContents)
	require.Equal(t, got, resp.Outputs[0].Contents.Fp32Contents)
	require.Equal(t, gotIDs, resp.Outputs[1].Contents.Int64Contents)
}

// A replica's HTTP errors reach the client with the gRPC code of whose
// fault they are: the client's with the replica's message, Unavailable
// (another replica is tried) for a replica that cannot answer now or at
// all.
func TestBridgeErrors(t *testing.T) {
	t.Parallel()
	rep := newV2Replica(t)
	s, b := bridgeTo(rep.addr(), "v2-rest")
	req := func(name string) *inference.ModelInferRequest {
		return &inference.ModelInferRequest{ModelName: name, Inputs: []*inference.ModelInferRequest_InferInputTensor{
			{Name: "x", Datatype: "FP32", Shape: []int64{1}, Contents: &inference.InferTensorContents{Fp32Contents: []float32{1}}}}}
	}
	for _, c := range []struct {
		model string
		code  codes.Code
		msg   string
	}{
		{"bad", codes.InvalidArgument, "input x is too short"},
		{"busy", codes.Unavailable, "HTTP 503: loading"},
		{"locked", codes.Internal, "refused the gateway's credentials"},
		{"broken", codes.Internal, "HTTP 500: boom"},
		{"garbled", codes.Internal, "undecodable"},
	} {
		_, err := inferVia(t, s, b, req(c.model))
		require.Equal(t, c.code, status.Code(err), "%s: %v", c.model, err)
		require.Contains(t, status.Convert(err).Message(), c.msg, c.model)
	}
	require.Equal(t, 5.0, testutil.ToFloat64(s.met.httpErr))

	// Nothing listening: Unavailable.
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	gone := lis.Addr().String()
	require.NoError(t, lis.Close())
	s, b = bridgeTo(gone, "v2-rest")
	_, err = inferVia(t, s, b, req("m"))
	require.Equal(t, codes.Unavailable, status.Code(err), "%v", err)
	require.Zero(t, b.http.binary.Load(), "an unanswered metadata call decides nothing")

	// A replica that speaks only OpenAI's API serves no KServe v2 call.
	s, b = bridgeTo(rep.addr(), "openai")
	_, err = inferVia(t, s, b, req("m"))
	require.Equal(t, codes.Unimplemented, status.Code(err), "%v", err)
	_, err = s.bridgeMetadata(t.Context(), b, "m", "")
	require.Equal(t, codes.Unimplemented, status.Code(err), "%v", err)
}

// Model metadata of a v2 REST replica: GET /v2/models/<name>, decoded.
func TestBridgeMetadata(t *testing.T) {
	t.Parallel()
	rep := newV2Replica(t)
	s, b := bridgeTo(rep.addr(), "v2-rest", "openai")
	md, err := s.bridgeMetadata(t.Context(), b, "m", "2")
	require.NoError(t, err)
	require.Equal(t, replicaCall{method: "GET", path: "/v2/models/m/versions/2", auth: "Bearer tok"}, rep.last())
	require.Equal(t, "m", md.Name)
	require.Equal(t, []string{"1", "2"}, md.Versions)
	require.Equal(t, "x", md.Inputs[0].Name)
	require.Equal(t, []int64{-1, 4}, md.Outputs[0].Shape)
	_, err = s.bridgeMetadata(t.Context(), b, "bad", "")
	require.Equal(t, codes.InvalidArgument, status.Code(err))
}

// The router gives a replica that speaks HTTP and not gRPC one HTTP
// client per address and token, and no gRPC connection; one that speaks
// gRPC too is called over gRPC, with the HTTP client for what only HTTP
// carries; one that says nothing (the built-in server) over gRPC only.
func TestRouterBridgesHTTPOnlyReplicas(t *testing.T) {
	t.Parallel()
	r := newRouter(nil, slog.New(slog.DiscardHandler), false, nil)
	t.Cleanup(r.close)
	put := func(ep *gatewayv1.Endpoint) {
		b, err := proto.Marshal(ep)
		require.NoError(t, err)
		r.putLocked(endpointkeys.Key(ep.Deployment, ep.Replica), b)
	}
	put(&gatewayv1.Endpoint{Deployment: "d", Replica: "a", Token: "t", Address: "127.0.0.1:1", HttpAddress: "127.0.0.1:1", Protocols: []string{"v2-rest"}})
	put(&gatewayv1.Endpoint{Deployment: "d", Replica: "b", Token: "t", Address: "127.0.0.1:1", HttpAddress: "127.0.0.1:1", Protocols: []string{"v2-rest", "openai"}})
	put(&gatewayv1.Endpoint{Deployment: "d", Replica: "c", Token: "t", HttpAddress: "127.0.0.1:1", Address: "127.0.0.1:2", Protocols: []string{"v2-rest", "v2-grpc"}})
	put(&gatewayv1.Endpoint{Deployment: "d", Replica: "e", Token: "t", Address: "127.0.0.1:2"})
	put(&gatewayv1.Endpoint{Deployment: "d", Replica: "f", Token: "t", Address: "127.0.0.1:1", Protocols: []string{"v2-rest"}})
	bs, _ := r.backends("d")
	require.Len(t, bs, 4, "an HTTP-only endpoint without http_address is not routed to")
	byReplica := map[string]*backend{}
	for _, b := range bs {
		byReplica[b.ep.Replica] = b
	}
	require.NotNil(t, byReplica["a"].http)
	require.Nil(t, byReplica["a"].conn)
	require.Same(t, byReplica["a"].http, byReplica["b"].http, "one client per address and token")
	require.NotNil(t, byReplica["c"].conn, "a replica that speaks v2 gRPC is called over gRPC")
	require.Same(t, byReplica["a"].http, byReplica["c"].http, "and over HTTP for what only HTTP carries")
	require.Nil(t, byReplica["e"].http)
	require.Len(t, r.https, 1)
}

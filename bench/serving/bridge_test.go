package serving

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	gatewayv1 "github.com/bmaas/bmaas/api/bmaas/gateway/v1"
	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
	"github.com/bmaas/bmaas/api/inference"
	"github.com/bmaas/bmaas/internal/app"
	"github.com/bmaas/bmaas/pkg/serving"
	"github.com/bmaas/bmaas/services/traineragent/endpointkeys"
	"github.com/bmaas/bmaas/tests/harness"
)

// BenchmarkBridge measures gRPC ModelInfer through the gateway to a
// replica that speaks KServe v2 REST only (the request translated to
// JSON, large tensors as binary data, the answer back to protobuf)
// against the same gateway to a replica that speaks v2 gRPC (raw frames
// passed through), side by side in one run, and REST clients to both
// (decoded for the gRPC one, passed through to the REST one). Both
// replicas are stand-ins
// in this process that decode the request and answer a fixed response,
// so the difference is the bridge. The platform runs without a trainer
// agent: the stand-ins' endpoint records are the deployments' replicas.
//
//	go test -run '^$' -bench Bridge -benchtime 1x ./bench/serving/
func BenchmarkBridge(b *testing.B) {
	c := harness.Start(b, func(cfg *app.Config) {
		cfg.Targets = slices.DeleteFunc(slices.Clone(cfg.Targets), func(s string) bool { return s == app.TargetTrainerAgent })
	})
	v := standInVersion(b, c)
	small, large := infer("viagrpc", 4), wide(16384)
	out := &inference.ModelInferResponse{ModelName: "m", ModelVersion: "1", Outputs: []*inference.ModelInferResponse_InferOutputTensor{{
		Name: "probabilities", Datatype: "FP64", Shape: []int64{1, 3}, Contents: &inference.InferTensorContents{Fp64Contents: []float64{0.1, 0.2, 0.7}}}}}

	// The gRPC stand-in: a raw grpc-go server (decodes the request,
	// encodes the fixed answer).
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	gs := grpc.NewServer()
	inference.RegisterGRPCInferenceServiceServer(gs, &echo{resp: out})
	go func() { _ = gs.Serve(lis) }()
	b.Cleanup(gs.Stop)
	// The REST stand-in: net/http decoding the request with the binary
	// data extension and encoding the fixed answer.
	hl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	hs := &http.Server{Handler: restStandIn(out), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = hs.Serve(hl) }()
	b.Cleanup(func() { _ = hs.Close() })

	for _, d := range []struct {
		name string
		ep   *gatewayv1.Endpoint
	}{
		{"viagrpc", &gatewayv1.Endpoint{Address: lis.Addr().String()}},
		{"viarest", &gatewayv1.Endpoint{Address: hl.Addr().String(), HttpAddress: hl.Addr().String(), Protocols: []string{"v2-rest"}}},
	} {
		dc := gatewayv1.NewDeploymentServiceClient(c.Conn)
		if _, err := dc.CreateDeployment(context.Background(), &gatewayv1.CreateDeploymentRequest{Deployment: &gatewayv1.Deployment{
			Name: d.name, Model: "standin@" + strconv.FormatInt(v, 10), MinReplicas: 1, MaxReplicas: 1}}); err != nil {
			b.Fatal(err)
		}
		d.ep.Deployment, d.ep.Replica, d.ep.Version, d.ep.Token = d.name, "standin-0", v, "standin-token"
		val, err := proto.Marshal(d.ep)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := c.EtcdClient(b).Put(context.Background(), endpointkeys.Key(d.name, "standin-0"), string(val)); err != nil {
			b.Fatal(err)
		}
	}
	gw := inference.NewGRPCInferenceServiceClient(c.Conn)
	to := func(model string, r *inference.ModelInferRequest) func() error {
		r = proto.Clone(r).(*inference.ModelInferRequest)
		r.ModelName = model
		return func() error { _, err := gw.ModelInfer(context.Background(), r); return err }
	}
	poll(b, "stand-ins routed", func() bool { return to("viagrpc", small)() == nil && to("viarest", small)() == nil })

	b.Run("grpc-to-grpc-1row-c1", func(b *testing.B) { load(1, window, to("viagrpc", small)).report(b) })
	b.Run("grpc-to-rest-1row-c1", func(b *testing.B) { load(1, window, to("viarest", small)).report(b) })
	b.Run("grpc-to-grpc-1row-c32", func(b *testing.B) { load(32, window, to("viagrpc", small)).report(b) })
	b.Run("grpc-to-rest-1row-c32", func(b *testing.B) { load(32, window, to("viarest", small)).report(b) })
	// REST clients: decoded and sent as protobuf to the gRPC replica,
	// passed through as they came to the REST one.
	hc := restClient()
	restBody := []byte(`{"inputs":[{"name":"input","datatype":"FP64","shape":[1,4],"data":[0,0.5,1,1.5]}]}`)
	rest := func(model string) func() error {
		return restPost(hc, c.HTTP+"/v2/models/"+model+"/infer", "", restBody)
	}
	// The REST replica called directly against through the gateway: what
	// a pass-through hop adds.
	b.Run("rest-direct-1row-c1", func(b *testing.B) {
		load(1, window, restPost(hc, "http://"+hl.Addr().String()+"/v2/models/viarest/infer", "", restBody)).report(b)
	})
	b.Run("rest-to-rest-1row-c1", func(b *testing.B) { load(1, window, rest("viarest")).report(b) })
	b.Run("rest-to-grpc-1row-c32", func(b *testing.B) { load(32, window, rest("viagrpc")).report(b) })
	b.Run("rest-to-rest-1row-c32", func(b *testing.B) { load(32, window, rest("viarest")).report(b) })
	b.Run("grpc-to-grpc-64KiB-c1", func(b *testing.B) { load(1, window, to("viagrpc", large)).report(b) })
	b.Run("grpc-to-rest-64KiB-c1", func(b *testing.B) { load(1, window, to("viarest", large)).report(b) })
	b.Run("grpc-to-grpc-64KiB-c8", func(b *testing.B) { load(8, window, to("viagrpc", large)).report(b) })
	b.Run("grpc-to-rest-64KiB-c8", func(b *testing.B) { load(8, window, to("viarest", large)).report(b) })
}

// wide is a one-row FP32 request of n values as raw contents (n*4 bytes),
// which the bridge sends as binary data.
func wide(n int) *inference.ModelInferRequest {
	c := &inference.InferTensorContents{Fp32Contents: make([]float32, n)}
	for i := range c.Fp32Contents {
		c.Fp32Contents[i] = float32(i%13) * 0.25
	}
	return &inference.ModelInferRequest{Inputs: []*inference.ModelInferRequest_InferInputTensor{{
		Name: "input", Datatype: "FP32", Shape: []int64{1, int64(n)}}}, RawInputContents: [][]byte{serving.AppendRaw(nil, "FP32", c)}}
}

// restStandIn is a v2 REST replica that takes binary data (its server
// metadata says so), decodes each request and answers out.
func restStandIn(out *inference.ModelInferResponse) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v2" {
			_, _ = io.WriteString(w, `{"name":"standin","version":"1","extensions":["binary_tensor_data"]}`)
			return
		}
		body := make([]byte, max(r.ContentLength, 0))
		if _, err := io.ReadFull(r.Body, body); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		n, err := serving.HeaderLength(r.Header.Get(serving.HeaderContentLength), len(body))
		req := &inference.ModelInferRequest{}
		if err == nil {
			err = serving.DecodeInferRequestBinary(body, n, req)
		}
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(serving.AppendInferResponse(body[:0], out))
	})
}

// standInVersion registers a version the stand-ins serve (its artifact
// is never run).
func standInVersion(b *testing.B, c *harness.Cluster) int64 {
	if _, err := c.Registry.CreateModel(context.Background(), &registryv1.CreateModelRequest{Model: &registryv1.Model{Name: "standin"}}); err != nil {
		b.Fatal(err)
	}
	return uploadVersion(b, c, "standin", registryv1.ModelFormat_MODEL_FORMAT_NATIVE, "", []byte("served by stand-ins"))
}

// uploadVersion registers data as a new version of model, in chunks of
// 1 MiB, and returns its number.
func uploadVersion(b *testing.B, c *harness.Cluster, model string, format registryv1.ModelFormat, filename string, data []byte) int64 {
	sum := sha256.Sum256(data)
	st, err := c.Registry.CreateModelVersion(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	_ = st.Send(&registryv1.CreateModelVersionRequest{Payload: &registryv1.CreateModelVersionRequest_Header{Header: &registryv1.CreateModelVersionHeader{
		Model: model, Sha256: hex.EncodeToString(sum[:]), SizeBytes: int64(len(data)),
		Spec: &registryv1.ModelVersionSpec{Format: format, Filename: filename}}}})
	for off := 0; off < len(data); off += 1 << 20 {
		_ = st.Send(&registryv1.CreateModelVersionRequest{Payload: &registryv1.CreateModelVersionRequest_Chunk{Chunk: data[off:min(off+1<<20, len(data))]}})
	}
	resp, err := st.CloseAndRecv()
	if err != nil {
		b.Fatal(err)
	}
	return resp.GetVersion().GetVersion()
}

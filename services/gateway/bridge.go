package gateway

import (
	"context"
	"net/http"
	"net/url"
	"strconv"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	gatewayv1 "github.com/bmaas/bmaas/api/bmaas/gateway/v1"
	"github.com/bmaas/bmaas/api/inference"
	"github.com/bmaas/bmaas/pkg/apierr"
	"github.com/bmaas/bmaas/pkg/grpcsrv"
	"github.com/bmaas/bmaas/pkg/iam"
	"github.com/bmaas/bmaas/pkg/runtimes"
	"github.com/bmaas/bmaas/pkg/serving"
)

// A replica that speaks KServe v2 REST and not v2 gRPC is bridged: a
// gRPC ModelInfer is decoded, sent as a v2 REST request (tensors of
// bridgeBinaryMin bytes or more as binary data when the replica's server
// metadata lists the binary_tensor_data extension), and the JSON answer
// is encoded back into a ModelInferResponse frame. REST clients' bodies
// go to such a replica as they came (restpass.go).
const (
	// bridgeBinaryMin is the size from which an input goes to a v2 REST
	// replica as binary data rather than JSON numbers.
	bridgeBinaryMin = 1024
	// binaryExtension is the server metadata's name of the binary tensor
	// data extension.
	binaryExtension = "binary_tensor_data"
)

// bridged reports whether an endpoint is called over HTTP: it says what
// it speaks, and that is HTTP and not v2 gRPC.
func bridged(ep *gatewayv1.Endpoint) bool {
	return len(ep.Protocols) > 0 && !runtimes.Speaks(ep.Protocols, runtimes.ProtocolV2GRPC) && runtimes.SpeaksHTTP(ep.Protocols)
}

// modelPath is /v2/models/<name>[/versions/<version>], with the
// deployment's bare name: a runtime's server knows it so.
func modelPath(name, version string) string {
	_, name = iam.SplitName(name)
	p := "/v2/models/" + url.PathEscape(name)
	if version != "" {
		p += "/versions/" + url.PathEscape(version)
	}
	return p
}

// bridgeInfer answers a ModelInfer request frame from a replica that
// speaks v2 REST.
func (s *Service) bridgeInfer(ctx context.Context, b *backend, frame *grpcsrv.RawFrame) (*grpcsrv.RawFrame, error) {
	resp, err := s.bridgeInferCall(ctx, b, frame)
	s.met.countHTTP(err)
	return resp, err
}

func (s *Service) bridgeInferCall(ctx context.Context, b *backend, frame *grpcsrv.RawFrame) (*grpcsrv.RawFrame, error) {
	if !runtimes.Speaks(b.ep.Protocols, runtimes.ProtocolV2REST) {
		return nil, status.Errorf(codes.Unimplemented, "deployment %s is served by a runtime that speaks %v, not KServe v2", b.ep.Deployment, b.ep.Protocols)
	}
	req := &inference.ModelInferRequest{}
	if err := proto.Unmarshal(frame.Bytes(), req); err != nil {
		return nil, apierr.Invalid("request", "not a ModelInferRequest: %v", err)
	}
	// The body is written before do returns: a pooled buffer.
	bp := bufPool.Get().(*[]byte)
	body, headerLen := serving.AppendInferRequest((*bp)[:0], req, b.http.binaryMin(ctx, b.ep.Deployment))
	*bp = body
	defer bufPool.Put(bp)
	hreq := &h1Request{method: http.MethodPost, path: modelPath(req.ModelName, req.ModelVersion) + "/infer",
		auth: b.http.auth, requestID: requestIDOf(ctx), body: body, contentType: "application/json"}
	if headerLen < len(body) {
		hreq.contentType = "application/octet-stream"
		hreq.headerLen = strconv.Itoa(headerLen)
	}
	rb, ans, err := b.http.do(ctx, hreq, b.ep.Deployment)
	if err != nil {
		return nil, err
	}
	defer bufPool.Put(rb)
	hl, err := serving.HeaderLength(ans.headerLen, len(*rb))
	if err != nil {
		return nil, undecodable(b, err)
	}
	out := &inference.ModelInferResponse{}
	if err := serving.DecodeInferResponse(*rb, hl, out); err != nil {
		return nil, undecodable(b, err)
	}
	// The answer aliases rb: encoded before rb goes back to the pool.
	wire, err := proto.Marshal(out)
	if err != nil {
		return nil, undecodable(b, err)
	}
	return grpcsrv.FrameOf(mem.SliceBuffer(wire)), nil
}

// bridgeMetadata answers ModelMetadata from a replica that speaks v2
// REST: GET /v2/models/<name>[/versions/<version>].
func (s *Service) bridgeMetadata(ctx context.Context, b *backend, name, version string) (*inference.ModelMetadataResponse, error) {
	md, err := s.bridgeMetadataCall(ctx, b, name, version)
	s.met.countHTTP(err)
	return md, err
}

func (s *Service) bridgeMetadataCall(ctx context.Context, b *backend, name, version string) (*inference.ModelMetadataResponse, error) {
	if !runtimes.Speaks(b.ep.Protocols, runtimes.ProtocolV2REST) {
		return nil, status.Errorf(codes.Unimplemented, "deployment %s is served by a runtime that speaks %v, not KServe v2", b.ep.Deployment, b.ep.Protocols)
	}
	rb, _, err := b.http.do(ctx, &h1Request{method: http.MethodGet, path: modelPath(name, version), auth: b.http.auth, requestID: requestIDOf(ctx)}, b.ep.Deployment)
	if err != nil {
		return nil, err
	}
	defer bufPool.Put(rb)
	md := &inference.ModelMetadataResponse{}
	if err := serving.DecodeModelMetadata(*rb, md); err != nil {
		return nil, undecodable(b, err)
	}
	return md, nil
}

func undecodable(b *backend, err error) error {
	return status.Errorf(codes.Internal, "a replica of %s answered an undecodable response: %v", b.ep.Deployment, err)
}

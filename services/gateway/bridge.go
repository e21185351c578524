package gateway

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

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
// is encoded back into a ModelInferResponse frame. REST clients reach such
// a replica through the same path (Service.Infer), their JSON decoded
// once and encoded once on the way.
const (
	// bridgeBinaryMin is the size from which an input goes to a v2 REST
	// replica as binary data rather than JSON numbers.
	bridgeBinaryMin = 1024
	// binaryExtension is the server metadata's name of the binary tensor
	// data extension.
	binaryExtension = "binary_tensor_data"
	// maxReplicaAnswer bounds a replica's HTTP answer, as gRPC's receive
	// limit bounds a gRPC replica's.
	maxReplicaAnswer = 64 << 20
)

// bridged reports whether an endpoint is called over HTTP: it says what
// it speaks, and that is HTTP and not v2 gRPC.
func bridged(ep *gatewayv1.Endpoint) bool {
	return len(ep.Protocols) > 0 && !runtimes.Speaks(ep.Protocols, runtimes.ProtocolV2GRPC) && runtimes.SpeaksHTTP(ep.Protocols)
}

// httpReplica is the HTTP client of one replica address and token: its
// own connections, so that they close with it. KServe v2 calls go over
// v2 (h1Pool); the OpenAI routes, which stream, over net/http's client.
type httpReplica struct {
	base   string // http://host:port
	auth   string // Bearer <token>
	v2     *h1Pool
	tr     *http.Transport
	client *http.Client
	// binary is whether the server takes binary tensor data: 0 not
	// known yet, binaryYes or binaryNo once its metadata answered.
	binary atomic.Int32
}

const (
	binaryYes = 1
	binaryNo  = 2
)

// binaryMin is the tensor size from which the replica gets binary data:
// 0 (none) unless its server metadata (GET /v2, asked once) lists the
// extension. A metadata call that gets no answer decides nothing: JSON
// this time, the question again next time.
func (h *httpReplica) binaryMin(ctx context.Context, dep string) int {
	switch h.binary.Load() {
	case binaryYes:
		return bridgeBinaryMin
	case binaryNo:
		return 0
	}
	rb, _, err := h.do(ctx, &h1Request{method: http.MethodGet, path: "/v2", auth: h.auth}, dep)
	if err != nil {
		if status.Code(err) != codes.Unavailable && ctx.Err() == nil {
			// It answered, without metadata.
			h.binary.Store(binaryNo)
		}
		return 0
	}
	defer bufPool.Put(rb)
	var md struct {
		Extensions []string `json:"extensions"`
	}
	if json.Unmarshal(*rb, &md) == nil && slices.Contains(md.Extensions, binaryExtension) {
		h.binary.Store(binaryYes)
		return bridgeBinaryMin
	}
	h.binary.Store(binaryNo)
	return 0
}

func newHTTPReplica(addr, token string) *httpReplica {
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        1024,
		MaxIdleConnsPerHost: 1024,
		IdleConnTimeout:     90 * time.Second,
		// Bodies are JSON and tensors: compressing them costs more than
		// it saves on a cluster's network.
		DisableCompression: true,
	}
	return &httpReplica{base: "http://" + addr, auth: "Bearer " + token, v2: newH1Pool(addr), tr: tr, client: &http.Client{Transport: tr}}
}

// close closes the replica's idle connections; calls in flight finish.
func (h *httpReplica) close() {
	h.v2.close()
	h.tr.CloseIdleConnections()
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

// do sends one request and reads a 200's body into a pooled buffer (the
// caller's to put back); any other answer is an error with the gRPC code
// of its HTTP status (httpError).
func (h *httpReplica) do(ctx context.Context, req *h1Request, dep string) (*[]byte, h1Answer, error) {
	bp := bufPool.Get().(*[]byte)
	b, a, err := h.v2.roundTrip(ctx, req, (*bp)[:0])
	*bp = b
	if err != nil {
		bufPool.Put(bp)
		var se *h1SendError
		switch {
		case ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded):
			return nil, a, status.FromContextError(cmp.Or(ctx.Err(), context.DeadlineExceeded)).Err()
		case errors.Is(err, errH1Header):
			return nil, a, apierr.Invalid("header", "%v", err)
		case errors.As(err, &se):
			// Refused, reset, unreachable: the replica is gone or
			// going, and forward tries another.
			return nil, a, status.Errorf(codes.Unavailable, "a replica of %s did not answer: %v", dep, err)
		}
		return nil, a, status.Errorf(codes.Unavailable, "a replica of %s broke off its answer: %v", dep, err)
	}
	if a.status != http.StatusOK {
		err := httpError(dep, a.status, b)
		bufPool.Put(bp)
		return nil, a, err
	}
	return bp, a, nil
}

// readAll appends r to b, up to maxReplicaAnswer bytes.
func readAll(b []byte, r io.Reader, size int64) ([]byte, error) {
	if size > maxReplicaAnswer {
		return b, fmt.Errorf("an answer of %d bytes is over %d", size, maxReplicaAnswer)
	}
	if size > 0 && int64(cap(b)) < size {
		b = make([]byte, 0, size)
	}
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if len(b) > maxReplicaAnswer {
			return b, fmt.Errorf("an answer over %d bytes", maxReplicaAnswer)
		}
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
	}
}

// httpError is the gRPC error of a replica's HTTP answer other than 200.
// A client's fault (400, 404, 413, ...) keeps the replica's message; a
// replica that cannot take the call now (503, 502, 429) is Unavailable,
// so that forward tries another replica; a replica refusing the gateway's
// token is the gateway's fault, not the client's.
func httpError(dep string, code int, body []byte) error {
	msg := answerMessage(body)
	var c codes.Code
	switch code {
	case http.StatusBadRequest, http.StatusUnprocessableEntity:
		c = codes.InvalidArgument
	case http.StatusNotFound:
		c = codes.NotFound
	case http.StatusRequestEntityTooLarge:
		c = codes.ResourceExhausted
	case http.StatusConflict:
		c = codes.FailedPrecondition
	case http.StatusRequestTimeout, http.StatusGatewayTimeout:
		c = codes.DeadlineExceeded
	case http.StatusMethodNotAllowed, http.StatusNotImplemented:
		c = codes.Unimplemented
	case http.StatusServiceUnavailable, http.StatusBadGateway, http.StatusTooManyRequests:
		return status.Errorf(codes.Unavailable, "a replica of %s answered HTTP %d: %s", dep, code, msg)
	case http.StatusUnauthorized, http.StatusForbidden:
		return status.Errorf(codes.Internal, "a replica of %s refused the gateway's credentials (HTTP %d): %s", dep, code, msg)
	default:
		if code >= 400 && code < 500 {
			c = codes.InvalidArgument
		} else {
			return status.Errorf(codes.Internal, "a replica of %s answered HTTP %d: %s", dep, code, msg)
		}
	}
	return status.Error(c, msg)
}

// answerMessage is the message of an error answer: KServe v2's
// {"error": "..."}, else the body's start.
func answerMessage(body []byte) string {
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(body, &e) == nil && e.Error != "" {
		return e.Error
	}
	const max = 512
	if len(body) > max {
		body = body[:max]
	}
	if len(body) == 0 {
		return "(no message)"
	}
	return string(body)
}

// restAnswer is a replica's answer to a REST inference request, passed
// through as it came: its body (from bufPool, the caller's to put back)
// and the headers that describe it.
type restAnswer struct {
	body        *[]byte
	contentType string
	headerLen   string
}

// restCall is one REST inference request on its way through forward:
// the body as it came, and its decoded form, made once when a replica
// that does not speak v2 REST is tried.
type restCall struct {
	name, version string
	body          []byte
	header        http.Header
	decode        func() (*inference.ModelInferRequest, error)

	req  *inference.ModelInferRequest
	wire *grpcsrv.RawFrame
	// Exactly one of pass and resp holds the answer.
	pass *restAnswer
	resp *inference.ModelInferResponse
}

// inferREST routes a REST inference request (the body as it came, with
// its headers) through forward: to a replica that speaks v2 REST it goes
// as it came and the replica's answer comes back as it came (pass);
// any other replica gets the decoded request and its answer comes back
// decoded (resp).
func (s *Service) inferREST(ctx context.Context, rc *restCall) error {
	// Decoded at once unless every replica now passes it through, so
	// that a bad request is refused before it waits for a replica.
	if bs, _ := s.router.backends(rc.name); !allPassThrough(bs) {
		if err := rc.decodeOnce(); err != nil {
			return err
		}
	}
	return s.forward(ctx, rc.name, rc.version, func(ctx context.Context, b *backend) error { return s.restCallOn(ctx, b, rc) })
}

// restCallOn sends rc to one replica.
func (s *Service) restCallOn(ctx context.Context, b *backend, rc *restCall) error {
	if b.http != nil && runtimes.Speaks(b.ep.Protocols, runtimes.ProtocolV2REST) {
		a, err := b.http.pass(ctx, b.ep.Deployment, rc)
		s.met.countHTTP(err)
		rc.pass = a
		return err
	}
	if err := rc.decodeOnce(); err != nil {
		return err
	}
	out, err := s.callReplica(ctx, b, rc.wire)
	if err != nil {
		return err
	}
	defer out.Free()
	resp := &inference.ModelInferResponse{}
	if err := proto.Unmarshal(out.Bytes(), resp); err != nil {
		return status.Errorf(codes.Internal, "a replica of %s answered an undecodable response: %v", rc.name, err)
	}
	rc.resp = resp
	return nil
}

// pass posts a REST inference body to the replica as it came.
func (h *httpReplica) pass(ctx context.Context, dep string, rc *restCall) (*restAnswer, error) {
	ct := rc.header.Get("Content-Type")
	if ct == "" {
		ct = "application/json"
	}
	rb, a, err := h.do(ctx, &h1Request{method: http.MethodPost, path: modelPath(rc.name, rc.version) + "/infer", auth: h.auth,
		requestID: requestIDOf(ctx), contentType: ct, headerLen: rc.header.Get(serving.HeaderContentLength), body: rc.body}, dep)
	if err != nil {
		return nil, err
	}
	return &restAnswer{body: rb, contentType: a.contentType, headerLen: a.headerLen}, nil
}

// decodeOnce decodes and encodes the request the first time it is
// needed.
func (rc *restCall) decodeOnce() error {
	if rc.req != nil {
		return nil
	}
	req, err := rc.decode()
	if err != nil {
		return err
	}
	wire, err := proto.Marshal(req)
	if err != nil {
		return apierr.Invalid("request", "unencodable: %v", err)
	}
	rc.req, rc.wire = req, grpcsrv.FrameOf(mem.SliceBuffer(wire))
	return nil
}

// allPassThrough reports whether there are replicas and every one takes
// REST bodies as they come.
func allPassThrough(bs []*backend) bool {
	for _, b := range bs {
		if b.http == nil || !runtimes.Speaks(b.ep.Protocols, runtimes.ProtocolV2REST) {
			return false
		}
	}
	return len(bs) > 0
}

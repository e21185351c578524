package gateway

import (
	"context"
	"net/http"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/bmaas/bmaas/api/inference"
	"github.com/bmaas/bmaas/pkg/apierr"
	"github.com/bmaas/bmaas/pkg/grpcsrv"
	"github.com/bmaas/bmaas/pkg/runtimes"
	"github.com/bmaas/bmaas/pkg/serving"
)

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

package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"google.golang.org/grpc/metadata"

	"github.com/bmaas/bmaas/api/inference"
	"github.com/bmaas/bmaas/pkg/apierr"
	"github.com/bmaas/bmaas/pkg/serving"
)

// DataPlane answers the KServe v2 calls the REST handlers need: the
// gateway itself in a process that runs it, or a gRPC client of one.
type DataPlane interface {
	Infer(ctx context.Context, req *inference.ModelInferRequest) (*inference.ModelInferResponse, error)
	ModelMetadata(ctx context.Context, name, version string) (*inference.ModelMetadataResponse, error)
	ModelReady(ctx context.Context, name, version string) (bool, error)
}

// restAPI is the KServe v2 REST protocol over a DataPlane.
type restAPI struct {
	dp       DataPlane
	maxBytes int64
}

// RegisterHTTP mounts the KServe v2 REST protocol (/v2/...), the
// convenience POST /v1/models/{name}:predict and the OpenAI-compatible
// routes (/openai/v1/..., openai.go) on mux; other POSTs under
// /v1/models/ go to fallback (the REST API of the other services).
func (s *Service) RegisterHTTP(mux *http.ServeMux, fallback http.Handler) {
	restAPI{dp: s, maxBytes: s.cfg.MaxRequestBytes}.register(mux, fallback)
	s.registerOpenAI(mux)
}

// RegisterRemoteHTTP mounts the same REST protocol in a process that does
// not run the gateway: every call goes to the gateway over c.
func RegisterRemoteHTTP(mux *http.ServeMux, fallback http.Handler, c inference.GRPCInferenceServiceClient, maxRequestBytes int64) {
	restAPI{dp: remote{c}, maxBytes: maxRequestBytes}.register(mux, fallback)
	registerRemoteOpenAI(mux)
}

func (a restAPI) register(mux *http.ServeMux, fallback http.Handler) {
	mux.HandleFunc("GET /v2", func(w http.ResponseWriter, _ *http.Request) {
		md := serverMetadata()
		writeJSON(w, http.StatusOK, map[string]any{"name": md.Name, "version": md.Version, "extensions": md.Extensions})
	})
	mux.HandleFunc("GET /v2/health/live", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"live": true})
	})
	mux.HandleFunc("GET /v2/health/ready", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"ready": true})
	})
	for _, base := range []string{"/v2/models/{name}", "/v2/models/{name}/versions/{version}"} {
		mux.HandleFunc("GET "+base, a.restMetadata)
		mux.HandleFunc("GET "+base+"/ready", a.restReady)
		mux.HandleFunc("POST "+base+"/infer", withRequestID(a.restInfer))
	}
	mux.HandleFunc("POST /v1/models/{call}", func(w http.ResponseWriter, r *http.Request) {
		name, ok := strings.CutSuffix(r.PathValue("call"), ":predict")
		if !ok {
			fallback.ServeHTTP(w, r)
			return
		}
		withRequestID(func(w http.ResponseWriter, r *http.Request) { a.restPredict(w, r, deploymentIn(r.Context(), name)) })(w, r)
	})
}

// remote is the DataPlane of a gateway reached over gRPC.
type remote struct {
	c inference.GRPCInferenceServiceClient
}

func (r remote) Infer(ctx context.Context, req *inference.ModelInferRequest) (*inference.ModelInferResponse, error) {
	if id := requestIDOf(ctx); id != "" { // the gateway keeps the edge's id
		ctx = metadata.AppendToOutgoingContext(ctx, requestIDKey, id)
	}
	return r.c.ModelInfer(ctx, req)
}

func (r remote) ModelMetadata(ctx context.Context, name, version string) (*inference.ModelMetadataResponse, error) {
	return r.c.ModelMetadata(ctx, &inference.ModelMetadataRequest{Name: name, Version: version})
}

func (r remote) ModelReady(ctx context.Context, name, version string) (bool, error) {
	resp, err := r.c.ModelReady(ctx, &inference.ModelReadyRequest{Name: name, Version: version})
	return resp.GetReady(), err
}

func (a restAPI) restMetadata(w http.ResponseWriter, r *http.Request) {
	md, err := a.dp.ModelMetadata(r.Context(), deploymentIn(r.Context(), r.PathValue("name")), r.PathValue("version"))
	if err != nil {
		writeErr(w, err)
		return
	}
	tensors := func(ts []*inference.ModelMetadataResponse_TensorMetadata) []map[string]any {
		out := make([]map[string]any, len(ts))
		for i, t := range ts {
			out[i] = map[string]any{"name": t.Name, "datatype": t.Datatype, "shape": t.Shape}
		}
		return out
	}
	writeJSON(w, http.StatusOK, map[string]any{"name": md.Name, "versions": md.Versions, "platform": md.Platform,
		"inputs": tensors(md.Inputs), "outputs": tensors(md.Outputs)})
}

func (a restAPI) restReady(w http.ResponseWriter, r *http.Request) {
	ready, err := a.dp.ModelReady(r.Context(), deploymentIn(r.Context(), r.PathValue("name")), r.PathValue("version"))
	if err != nil {
		writeErr(w, err)
		return
	}
	code := http.StatusOK
	if !ready {
		code = http.StatusServiceUnavailable
	}
	writeJSON(w, code, map[string]any{"name": r.PathValue("name"), "ready": ready})
}

var bufPool = sync.Pool{New: func() any { return new([]byte) }}

// readBody reads the body up to the size limit into a pooled buffer.
func (a restAPI) readBody(w http.ResponseWriter, r *http.Request) (*[]byte, error) {
	if r.ContentLength > a.maxBytes {
		// Refused before a byte of it is read; the connection closes
		// rather than draining what the client declared.
		w.Header().Set("Connection", "close")
		return nil, apierr.Exhausted("request body of %d bytes is over %d bytes (--gateway.max-request-bytes)", r.ContentLength, a.maxBytes)
	}
	bp := bufPool.Get().(*[]byte)
	b := (*bp)[:0]
	body := http.MaxBytesReader(w, r.Body, a.maxBytes)
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := body.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			*bp = b
			return bp, nil
		}
		if err != nil {
			bufPool.Put(bp)
			var mb *http.MaxBytesError
			if errors.As(err, &mb) {
				// Said here too: behind the edge's middleware the
				// server does not learn it from MaxBytesReader.
				w.Header().Set("Connection", "close")
				return nil, apierr.Exhausted("request body over %d bytes (--gateway.max-request-bytes)", a.maxBytes)
			}
			return nil, apierr.Invalid("body", "%v", err)
		}
	}
}

// restPassThrough is a DataPlane that routes REST inference bodies
// itself: the gateway, which passes them to replicas that speak v2 REST
// as they came (Service.inferREST).
type restPassThrough interface {
	inferREST(ctx context.Context, rc *restCall) error
}

// restInfer answers POST .../infer: a JSON request, or one in the
// binary data extension's form (Inference-Header-Content-Length says
// the JSON's length, the inputs' binary data follow it); the answer is
// JSON, with the outputs the request asks as binary data after it. A
// replica that speaks v2 REST gets the body as it came and its answer
// goes back as it came.
func (a restAPI) restInfer(w http.ResponseWriter, r *http.Request) {
	bp, err := a.readBody(w, r)
	if err != nil {
		writeErr(w, err)
		return
	}
	// The request's binary inputs alias the body until the answer is
	// written.
	defer bufPool.Put(bp)
	headerLen, err := serving.HeaderLength(r.Header.Get(serving.HeaderContentLength), len(*bp))
	if err != nil {
		writeErr(w, err)
		return
	}
	name, version := deploymentIn(r.Context(), r.PathValue("name")), r.PathValue("version")
	pc, r := a.logPayload(r, name, "v2-rest", *bp)
	defer func() { pc.done(err) }()
	decode := func() (*inference.ModelInferRequest, error) {
		req := &inference.ModelInferRequest{ModelName: name, ModelVersion: version}
		return req, serving.DecodeInferRequestBinary(*bp, headerLen, req)
	}
	var (
		req  *inference.ModelInferRequest
		resp *inference.ModelInferResponse
	)
	if pt, ok := a.dp.(restPassThrough); ok {
		rc := &restCall{name: name, version: version, body: *bp, header: r.Header, decode: decode}
		err = pt.inferREST(r.Context(), rc)
		if err != nil {
			writeErr(w, err)
			return
		}
		if rc.pass != nil {
			defer bufPool.Put(rc.pass.body)
			ct := rc.pass.contentType
			if ct == "" {
				ct = "application/json"
			}
			w.Header().Set("Content-Type", ct)
			if rc.pass.headerLen != "" {
				w.Header().Set(serving.HeaderContentLength, rc.pass.headerLen)
			}
			pc.answered(http.StatusOK, *rc.pass.body)
			_, _ = w.Write(*rc.pass.body)
			return
		}
		req, resp = rc.req, rc.resp
	} else {
		if req, err = decode(); err != nil {
			writeErr(w, err)
			return
		}
		if resp, err = a.dp.Infer(r.Context(), req); err != nil {
			writeErr(w, err)
			return
		}
	}
	ob := bufPool.Get().(*[]byte)
	defer bufPool.Put(ob)
	out, headerLen := serving.AppendInferResponseBinary((*ob)[:0], resp, serving.BinaryOutputs(req))
	if headerLen < len(out) {
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set(serving.HeaderContentLength, strconv.Itoa(headerLen))
	} else {
		w.Header().Set("Content-Type", "application/json")
	}
	pc.answered(http.StatusOK, out)
	_, _ = w.Write(out)
	*ob = out
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// writeErr answers a KServe v2 route's error: {"error": "..."} with the
// HTTP status of its gRPC code (apierr's one table).
func writeErr(w http.ResponseWriter, err error) { apierr.WriteKServe(w, err) }

// logPayload starts the payload log of a request to deployment name when
// the data plane is this process's gateway and the deployment samples it
// (nil otherwise); the request's context gets the place for the version
// that answers.
func (a restAPI) logPayload(r *http.Request, name, protocol string, body []byte) (*payloadCall, *http.Request) {
	pl, ok := a.dp.(interface {
		payloadFor(context.Context, string, string, []byte) *payloadCall
	})
	if !ok {
		return nil, r
	}
	pc := pl.payloadFor(r.Context(), name, protocol, body)
	return pc, r.WithContext(pc.withServed(r.Context()))
}

package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	gatewayv1 "github.com/bmaas/bmaas/api/bmaas/gateway/v1"
	"github.com/bmaas/bmaas/pkg/apierr"
	"github.com/bmaas/bmaas/pkg/iam"
	"github.com/bmaas/bmaas/pkg/runtimes"
)

// OpenAI-compatible routes under /openai/v1 (bmaas's own REST API has
// /v1/models): completions, chat/completions and embeddings go to a
// ready replica of the deployment the request's model field names
// ("name", or "name@version" to pin a version) when its runtime speaks
// the OpenAI API; the body goes as it came (the model field rewritten to
// the deployment's name, which the replica serves) and the answer comes
// back as it came, a stream chunk by chunk, each flushed at once. A
// client that goes away cancels the replica's request; the request's
// deadline is gateway.generation-timeout. Errors are in the OpenAI API's
// shape. models lists the deployments whose runtime speaks the API.
const openAIPrefix = "/openai/v1"

// openAIRoutes are the POST routes passed to replicas, by their path
// below /openai/v1 (the replica serves them below /v1).
var openAIRoutes = []string{"completions", "chat/completions", "embeddings"}

type openAI struct {
	s        *Service
	maxBytes int64
}

func (s *Service) registerOpenAI(mux *http.ServeMux) {
	o := openAI{s: s, maxBytes: s.cfg.MaxRequestBytes}
	mux.HandleFunc("GET "+openAIPrefix+"/models", o.models)
	mux.HandleFunc("GET "+openAIPrefix+"/models/{model}", o.model)
	for _, route := range openAIRoutes {
		mux.HandleFunc("POST "+openAIPrefix+"/"+route, withRequestID(func(w http.ResponseWriter, r *http.Request) { o.call(w, r, route) }))
	}
	mux.HandleFunc(openAIPrefix+"/", func(w http.ResponseWriter, r *http.Request) {
		apierr.WriteOpenAIStatus(w, http.StatusNotFound, fmt.Sprintf("%s %s: no such route of the OpenAI API here (%s)",
			r.Method, r.URL.Path, strings.Join(openAIRouteList(), ", ")), "invalid_request_error", "", "unknown_url")
	})
}

// registerRemoteOpenAI answers the OpenAI routes in a process that does
// not run the gateway: they stream from replicas, so they are served by
// the HTTP edge of a process that does.
func registerRemoteOpenAI(mux *http.ServeMux) {
	mux.HandleFunc(openAIPrefix+"/", func(w http.ResponseWriter, r *http.Request) {
		apierr.WriteOpenAIStatus(w, http.StatusNotImplemented, "the OpenAI-compatible routes are served on the HTTP address of a process that runs the gateway",
			"invalid_request_error", "", "")
	})
}

func openAIRouteList() []string {
	out := []string{"GET " + openAIPrefix + "/models"}
	for _, r := range openAIRoutes {
		out = append(out, "POST "+openAIPrefix+"/"+r)
	}
	return out
}

// openAIModel is a model of GET /models: a deployment.
type openAIModel struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	OwnedBy string `json:"owned_by"`
}

// servingOpenAI lists the deployments whose current runtime speaks the
// OpenAI API, by name.
func (o openAI) servingOpenAI(ctx context.Context) ([]openAIModel, error) {
	rts, err := o.s.allRuntimes(ctx)
	if err != nil {
		return nil, err
	}
	speaks := map[string]bool{}
	for _, rt := range rts {
		speaks[rt.GetName()] = runtimes.Speaks(rt.GetServer().GetProtocols(), runtimes.ProtocolOpenAI)
	}
	var out []openAIModel
	token := ""
	for {
		resp, err := o.s.List(ctx, &gatewayv1.ListDeploymentsRequest{PageSize: 1000, PageToken: token})
		if err != nil {
			return nil, err
		}
		for _, d := range resp.GetDeployments() {
			if speaks[d.GetStatus().GetRuntime()] {
				out = append(out, openAIModel{ID: d.GetName(), Object: "model", Created: d.GetCreateTime().GetSeconds(), OwnedBy: "bmaas"})
			}
		}
		if token = resp.GetNextPageToken(); token == "" {
			return out, nil
		}
	}
}

func (o openAI) models(w http.ResponseWriter, r *http.Request) {
	ms, err := o.servingOpenAI(r.Context())
	if err != nil {
		apierr.WriteOpenAI(w, err)
		return
	}
	if ms == nil {
		ms = []openAIModel{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"object": "list", "data": ms})
}

func (o openAI) model(w http.ResponseWriter, r *http.Request) {
	ms, err := o.servingOpenAI(r.Context())
	if err != nil {
		apierr.WriteOpenAI(w, err)
		return
	}
	id := deploymentIn(r.Context(), r.PathValue("model"))
	for _, m := range ms {
		if m.ID == id {
			writeJSON(w, http.StatusOK, m)
			return
		}
	}
	apierr.WriteOpenAI(w, apierr.NotFound("model", r.PathValue("model")))
}

// openAIRequest is what the gateway reads of a request: the deployment
// (and version) its model field names, whether it streams, and the body
// to send.
type openAIRequest struct {
	name, version string
	stream        bool
	body          []byte
	start         time.Time // its arrival, for the time to first token
	blocks        []uint64  // its prompt's prefix hashes (routing.go)
	log           *payloadCall
}

// parseOpenAI reads the model and stream fields; the replica checks the
// rest. A pinned version (model "name@3") is rewritten to the name.
func parseOpenAI(body []byte) (*openAIRequest, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil || fields == nil {
		return nil, apierr.Invalid("body", "not a JSON object")
	}
	raw, ok := fields["model"]
	if !ok {
		return nil, apierr.Invalid("model", "required: the name of a deployment (GET %s/models lists them)", openAIPrefix)
	}
	var model string
	if err := json.Unmarshal(raw, &model); err != nil || model == "" {
		return nil, apierr.Invalid("model", "must be the name of a deployment, got %s", raw)
	}
	req := &openAIRequest{body: body, blocks: promptBlocks(fields)}
	if s, ok := fields["stream"]; ok && string(s) != "null" {
		if err := json.Unmarshal(s, &req.stream); err != nil {
			return nil, apierr.Invalid("stream", "must be true or false, got %s", s)
		}
	}
	name, version, pinned := strings.Cut(model, "@")
	if pinned {
		if v, err := strconv.ParseInt(version, 10, 64); err != nil || v <= 0 {
			return nil, apierr.Invalid("model", "%q: the version after @ must be a number", model)
		}
		fields["model"], _ = json.Marshal(name)
		b, err := json.Marshal(fields)
		if err != nil {
			return nil, apierr.Invalid("body", "%v", err)
		}
		req.body = b
	}
	req.name, req.version = name, version
	return req, nil
}

// call forwards one POST route to a replica of the deployment.
func (o openAI) call(w http.ResponseWriter, r *http.Request, route string) {
	start := time.Now()
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, o.maxBytes))
	if err != nil {
		var mb *http.MaxBytesError
		if errors.As(err, &mb) {
			err = apierr.Exhausted("a request body over %d bytes (gateway.max-request-bytes)", mb.Limit)
		} else {
			err = status.Errorf(codes.Canceled, "reading the request: %v", err)
		}
		apierr.WriteOpenAI(w, err)
		return
	}
	// The body is read: a stream may last longer than the edge's read
	// timeout, which would otherwise cancel it.
	_ = http.NewResponseController(w).SetReadDeadline(time.Time{})
	req, err := parseOpenAI(body)
	if err != nil {
		apierr.WriteOpenAI(w, err)
		return
	}
	req.name = deploymentIn(r.Context(), req.name)
	// The body names the deployment (and its project): the caller's role
	// there, or its token scoped to deployments, is checked here (the
	// edge checked the caller's project).
	if !iam.MayInvoke(r.Context(), req.name) {
		apierr.WriteOpenAIStatus(w, http.StatusNotFound, fmt.Sprintf("model: deployment %q not found", req.name),
			"invalid_request_error", "model", "model_not_found")
		return
	}
	if err := o.s.tokens.check(iam.ProjectOfName(req.name)); err != nil {
		w.Header().Set("Retry-After", "60")
		apierr.WriteOpenAIStatus(w, http.StatusTooManyRequests, err.Error(), "rate_limit_error", "", "quota_exceeded")
		return
	}
	req.start = start
	req.log = o.s.payloadFor(r.Context(), req.name, "openai", body)
	answered := false
	var ka *keepAlive
	if req.stream {
		// A stream that waits for a replica (a cold start) gets SSE
		// comments, so that clients and proxies do not give up on it.
		ka = startKeepAlive(w, o.s.cfg.StreamKeepAlive)
		defer ka.stop()
	}
	defer func() { req.log.done(err) }()
	err = o.s.forwardWithin(req.log.withServed(r.Context()), o.s.cfg.GenerationTimeout, req.name, req.version, req.blocks, func(ctx context.Context, b *backend) error {
		if b.http == nil || !runtimes.Speaks(b.ep.Protocols, runtimes.ProtocolOpenAI) {
			return apierr.Invalid("model", "deployment %s is served by a runtime that does not speak the OpenAI API (its replicas speak %s)",
				req.name, strings.Join(protocolsOf(b), ", "))
		}
		var err error
		answered, err = o.relay(ctx, w, b, route, req, ka)
		return err
	})
	if err != nil && !answered && ka.stop() {
		// The stream has begun with keep-alives: the error is its event.
		writeStreamError(w, err)
		return
	}
	var tm *tooManyHeld
	if err != nil && !answered && errors.As(err, &tm) {
		w.Header().Set("Retry-After", "1")
		apierr.WriteOpenAIStatus(w, http.StatusTooManyRequests, tm.Error(), "rate_limit_error", "", "too_many_requests")
		return
	}
	if err != nil && !answered {
		if apierr.Code(err) == codes.NotFound {
			// A deployment or version that does not exist: the model field.
			msg := status.Convert(apierr.ToStatus(err)).Message()
			apierr.WriteOpenAIStatus(w, http.StatusNotFound, fmt.Sprintf("model: %s (GET %s/models lists the deployments that serve the OpenAI API)",
				msg, openAIPrefix), "invalid_request_error", "model", "model_not_found")
			return
		}
		apierr.WriteOpenAI(w, err)
	}
}

// protocolsOf is what a replica speaks; the built-in runtimes speak v2
// gRPC.
func protocolsOf(b *backend) []string {
	if len(b.ep.Protocols) == 0 {
		return []string{runtimes.ProtocolV2GRPC}
	}
	return b.ep.Protocols
}

// relay sends the request to one replica and its answer to w. answered
// says whether w has been written to: after that the request cannot go
// to another replica.
func (o openAI) relay(ctx context.Context, w http.ResponseWriter, b *backend, route string, req *openAIRequest, ka *keepAlive) (answered bool, err error) {
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, b.http.base+"/v1/"+route, bytes.NewReader(req.body))
	if err != nil {
		return false, status.Errorf(codes.Internal, "openai request: %v", err)
	}
	hreq.Header.Set("Authorization", b.http.auth)
	hreq.Header.Set("Content-Type", "application/json")
	if id := requestIDOf(ctx); id != "" {
		hreq.Header.Set(requestIDHeader, id)
	}
	if req.stream {
		hreq.Header.Set("Accept", "text/event-stream")
	}
	resp, err := b.http.client.Do(hreq)
	o.s.met.countHTTP(err)
	if err != nil {
		if ctx.Err() != nil {
			return false, status.FromContextError(ctx.Err()).Err()
		}
		// Refused, reset: the replica is gone or going, and forward
		// tries another.
		return false, status.Errorf(codes.Unavailable, "a replica of %s did not answer: %v", b.ep.Deployment, err)
	}
	defer resp.Body.Close()
	if ka.stop() {
		// The stream began with keep-alives: its status and headers are
		// sent; an error answer becomes the stream's error event.
		if resp.StatusCode != http.StatusOK {
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
			endStream(w, b)
			return true, nil
		}
		return true, o.copyStream(ctx, w, resp, b.ep.Deployment, req, true)
	}
	h := w.Header()
	for _, k := range []string{"Content-Type", "Cache-Control"} { // X-Request-Id is the gateway's
		if v := resp.Header.Get(k); v != "" {
			h.Set(k, v)
		}
	}
	stream := strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream")
	if stream {
		h.Set("X-Accel-Buffering", "no") // nor any proxy in front
	}
	w.WriteHeader(resp.StatusCode)
	if resp.StatusCode != http.StatusOK {
		stream = false // an error answer is watched for nothing
	}
	return true, o.copyStream(ctx, w, resp, b.ep.Deployment, req, stream)
}

// copyStream copies the replica's answer to w as it comes, each read
// flushed at once, measuring it (llmmetrics.go) when it is a 200.
func (o openAI) copyStream(ctx context.Context, w http.ResponseWriter, resp *http.Response, dep string, req *openAIRequest, stream bool) error {
	req.log.answered(resp.StatusCode, nil)
	gen := &generation{start: req.start, stream: stream, itl: o.s.met.llm.itl.WithLabelValues(dep)}
	if resp.StatusCode == http.StatusOK {
		defer func() {
			rec := gen.observe(o.s.met.llm, dep)
			if rec.at.IsZero() {
				rec.at = time.Now()
			}
			o.s.llm.add(dep, rec)
			o.s.tokens.add(iam.ProjectOfName(dep), int64(rec.prompt+rec.completion))
		}()
	}
	rc := http.NewResponseController(w)
	buf := make([]byte, 32<<10)
	for {
		n, rerr := resp.Body.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return nil // the client went away; ctx ends the replica's request
			}
			_ = rc.Flush()
			gen.feed(buf[:n], time.Now())
			req.log.appendResponse(buf[:n])
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			if errors.Is(ctx.Err(), context.DeadlineExceeded) && stream {
				// The deadline ends a stream cleanly: an error event the
				// clients read, then the end of the stream.
				msg := fmt.Sprintf("the request ran past its deadline of %s (gateway.generation-timeout)", o.s.cfg.GenerationTimeout)
				endStream(w, apierr.OpenAIBody(msg, "service_unavailable", "", "timeout"))
			}
			return nil
		}
	}
}

// keepAlive writes SSE comments to a stream that waits for a replica,
// every interval, its status and headers with the first; stop ends it.
type keepAlive struct {
	mu      sync.Mutex
	w       http.ResponseWriter
	sent    bool // the status and headers are written
	stopped bool
	done    chan struct{}
}

func startKeepAlive(w http.ResponseWriter, every time.Duration) *keepAlive {
	ka := &keepAlive{w: w, done: make(chan struct{})}
	go func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-ka.done:
				return
			case <-t.C:
			}
			ka.mu.Lock()
			if !ka.stopped {
				if !ka.sent {
					h := w.Header()
					h.Set("Content-Type", "text/event-stream")
					h.Set("Cache-Control", "no-cache")
					h.Set("X-Accel-Buffering", "no")
					w.WriteHeader(http.StatusOK)
					ka.sent = true
				}
				_, _ = io.WriteString(w, ": waiting for a replica\n\n")
				_ = http.NewResponseController(w).Flush()
			}
			ka.mu.Unlock()
		}
	}()
	return ka
}

// stop ends the keep-alives (nil: there are none) and says whether the
// stream has begun.
func (ka *keepAlive) stop() bool {
	if ka == nil {
		return false
	}
	ka.mu.Lock()
	defer ka.mu.Unlock()
	if !ka.stopped {
		ka.stopped = true
		close(ka.done)
	}
	return ka.sent
}

// writeStreamError ends a begun stream with err as its error event.
func writeStreamError(w http.ResponseWriter, err error) {
	st := status.Convert(apierr.ToStatus(err))
	endStream(w, apierr.OpenAIBody(st.Message(), "service_unavailable", apierr.FieldOf(err), ""))
}

// endStream ends a begun stream with an error event (an OpenAI error
// body), then [DONE].
func endStream(w http.ResponseWriter, errBody []byte) {
	_, _ = fmt.Fprintf(w, "data: %s\n\ndata: [DONE]\n\n", bytes.TrimSpace(errBody))
	_ = http.NewResponseController(w).Flush()
}

package app

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"hash/fnv"
	"mime"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	evaluatorv1 "github.com/bmaas/bmaas/api/bmaas/evaluator/v1"
	gatewayv1 "github.com/bmaas/bmaas/api/bmaas/gateway/v1"
	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
	schedulerv1 "github.com/bmaas/bmaas/api/bmaas/scheduler/v1"
	"github.com/bmaas/bmaas/api/inference"
	"github.com/bmaas/bmaas/pkg/grpcsrv"
)

// FuzzREST sends fuzzed requests to every route of the HTTP edge as
// served (guard, bearer token, grpc-gateway, the hand-written routes)
// over a real gRPC server whose services are all unimplemented, so every
// request that decodes reaches gRPC and comes back Unimplemented. The
// inputs: the route ("METHOD /template", or any string, hashed to one),
// the path parameters (separated by newlines), the query, the body and a
// mode byte (content type, chunked body, no token).
//
// Invariants: no panic; no 5xx but 501, 503 and 504; every error is JSON
// with a message; a JSON route whose body is not JSON answers a 4xx (or
// redirects to a clean path without reading it).
func FuzzREST(f *testing.F) {
	h := restEdge(f)
	rs := restRoutes(f)
	for _, s := range restSeeds {
		f.Add(s.route, s.param, s.query, []byte(s.body), s.mode)
	}
	f.Fuzz(func(t *testing.T, route, param, query string, body []byte, mode uint8) {
		r := pickRoute(rs, route)
		req, ok := restRequest(r, param, query, body, mode)
		if !ok {
			return // not a request line net/http would hand to a handler
		}
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req.WithContext(ctx))
		if ctx.Err() != nil {
			t.Fatalf("%s %s: no answer within 10s", req.Method, req.URL)
		}
		checkAnswer(t, r, req, body, w.Result())
	})
}

// fuzzToken is the bearer token the edge under fuzz wants.
const fuzzToken = "fuzz-token"

// restEdge serves the edge over a gRPC server on 127.0.0.1:0 with every
// service unimplemented. JSON bodies are capped at 4 KiB so the fuzzer
// reaches the limits.
func restEdge(f *testing.F) http.Handler {
	var cfg Config
	cfg.RegisterFlags(flag.NewFlagSet("fuzz", flag.ContinueOnError))
	cfg.GRPC.Addr = "127.0.0.1:0"
	cfg.HTTP.MaxBodyBytes = 4 << 10
	srv, err := grpcsrv.New(cfg.GRPC, grpcsrv.Deps{})
	if err != nil {
		f.Fatal(err)
	}
	s := srv.GRPC()
	registryv1.RegisterRegistryServiceServer(s, registryv1.UnimplementedRegistryServiceServer{})
	schedulerv1.RegisterSchedulerServiceServer(s, schedulerv1.UnimplementedSchedulerServiceServer{})
	evaluatorv1.RegisterEvaluatorServiceServer(s, evaluatorv1.UnimplementedEvaluatorServiceServer{})
	gatewayv1.RegisterDeploymentServiceServer(s, gatewayv1.UnimplementedDeploymentServiceServer{})
	gatewayv1.RegisterRuntimeServiceServer(s, gatewayv1.UnimplementedRuntimeServiceServer{})
	inference.RegisterGRPCInferenceServiceServer(s, inference.UnimplementedGRPCInferenceServiceServer{})
	go func() { _ = srv.Serve() }()
	f.Cleanup(func() { srv.Shutdown(context.Background()) })
	conn, err := grpc.NewClient(srv.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = conn.Close() })
	hs, err := newHTTPServer(f.Context(), conn, edge{cfg: cfg.HTTP, token: fuzzToken,
		reg: prometheus.NewRegistry(), ready: func() bool { return true }, maxInferBytes: 4 << 10})
	if err != nil {
		f.Fatal(err)
	}
	return hs.Handler
}

// bodyKind is what a route does with its body.
type bodyKind int

const (
	noBody bodyKind = iota
	jsonBody
	rawBody
)

type restRoute struct {
	method, path string
	body         bodyKind
}

func (r restRoute) key() string { return r.method + " " + r.path }

// restRoutes are the routes of openapi.json and the hand-written ones.
func restRoutes(f *testing.F) []restRoute {
	var doc struct {
		Paths map[string]map[string]struct {
			Parameters []struct {
				In string `json:"in"`
			} `json:"parameters"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(openAPI, &doc); err != nil {
		f.Fatal(err)
	}
	var rs []restRoute
	for p, ms := range doc.Paths {
		for m, op := range ms {
			r := restRoute{method: strings.ToUpper(m), path: p}
			if slices.ContainsFunc(op.Parameters, func(x struct {
				In string `json:"in"`
			}) bool {
				return x.In == "body"
			}) {
				r.body = jsonBody
			}
			rs = append(rs, r)
		}
	}
	slices.SortFunc(rs, func(a, b restRoute) int { return strings.Compare(a.key(), b.key()) })
	if len(rs) < 40 {
		f.Fatalf("openapi.json lists %d routes, want them all", len(rs))
	}
	return append(rs,
		restRoute{"PUT", "/v1/models/{model}/artifact", rawBody},
		restRoute{"PUT", "/v1/datasets/{dataset}/csv", rawBody},
		restRoute{"GET", "/v1/models/{model}/versions/{version}/artifact", noBody},
		restRoute{"GET", "/v1/datasets/{dataset}/versions/{version}/csv", noBody},
		restRoute{"POST", "/v2/models/{name}/infer", jsonBody},
		restRoute{"POST", "/v2/models/{name}/versions/{version}/infer", jsonBody},
		restRoute{"GET", "/v2/models/{name}", noBody},
		restRoute{"GET", "/v2/models/{name}/ready", noBody},
		restRoute{"POST", "/v1/models/{name}:predict", jsonBody},
	)
}

// pickRoute finds the route a seed names, or hashes a fuzzed string to one.
func pickRoute(rs []restRoute, s string) restRoute {
	for _, r := range rs {
		if r.key() == s {
			return r
		}
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(s))
	return rs[h.Sum32()%uint32(len(rs))]
}

// Mode bits: the low three choose the content type.
const (
	modeChunked = 1 << 3
	modeNoToken = 1 << 4
)

var contentTypes = []string{"application/json", "", "application/json; charset=utf-8", "text/plain",
	"application/octet-stream", "APPLICATION/JSON", "application/x-www-form-urlencoded", "application/json; ="}

// restRequest builds the request as net/http's server reads it off the
// wire; false when it would not parse (the server answers 400 itself).
func restRequest(r restRoute, param, query string, body []byte, mode uint8) (*http.Request, bool) {
	params := strings.Split(param, "\n")
	target, i := r.path, 0
	for {
		open := strings.IndexByte(target, '{')
		end := strings.IndexByte(target, '}')
		if open < 0 || end < open {
			break
		}
		target = target[:open] + escape(params[i%len(params)], "/%") + target[end+1:]
		i++
	}
	if query != "" {
		target += "?" + escape(query, "/%?=&")
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n", r.method, target)
	if mode&modeNoToken == 0 {
		b.WriteString("Authorization: Bearer " + fuzzToken + "\r\n")
	}
	if ct := contentTypes[mode&7]; ct != "" {
		b.WriteString("Content-Type: " + ct + "\r\n")
	}
	if mode&modeChunked != 0 {
		b.WriteString("Transfer-Encoding: chunked\r\n\r\n")
		if len(body) > 0 {
			fmt.Fprintf(&b, "%x\r\n%s\r\n", len(body), body)
		}
		b.WriteString("0\r\n\r\n")
	} else {
		fmt.Fprintf(&b, "Content-Length: %d\r\n\r\n%s", len(body), body)
	}
	req, err := http.ReadRequest(bufio.NewReader(&b))
	if err != nil {
		return nil, false
	}
	req.RemoteAddr = "127.0.0.1:40000"
	return req, true
}

// escape percent-encodes the bytes that may not appear raw in a request
// target, keeping the sub-delimiters and those in keep.
func escape(s, keep string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			strings.IndexByte("-._~!$'()*+,;:@", c) >= 0 || strings.IndexByte(keep, c) >= 0 {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "%%%02X", c)
	}
	return b.String()
}

// checkAnswer holds the invariants of one answer.
func checkAnswer(t *testing.T, r restRoute, req *http.Request, body []byte, resp *http.Response) {
	t.Helper()
	got := new(bytes.Buffer)
	_, _ = got.ReadFrom(resp.Body)
	c := resp.StatusCode
	what := fmt.Sprintf("%s %s (route %s) answered %d %q", req.Method, req.URL, r.key(), c, got.String())
	if c >= 500 && c != http.StatusNotImplemented && c != http.StatusServiceUnavailable && c != http.StatusGatewayTimeout {
		t.Fatalf("%s: a server error, from a backend that only answers Unimplemented", what)
	}
	// A redirect (the mux cleaning the path: //, ..) never read the body.
	if r.body == jsonBody && jsonTyped(req) && undecodable(body) && (c < 300 || c >= 500) {
		t.Fatalf("%s: a body that is not JSON must be a 4xx", what)
	}
	if c < 400 {
		return
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "application/json" {
		t.Fatalf("%s: an error of Content-Type %q, want application/json", what, resp.Header.Get("Content-Type"))
	}
	if !errorMessage(got.Bytes()) {
		t.Fatalf("%s: the error body is not JSON with a message", what)
	}
}

// errorMessage: the REST API's {"code", "message"}, KServe v2's
// {"error": "..."} or a stream's {"error": {"code", "message"}}.
func errorMessage(b []byte) bool {
	var e struct {
		Message string          `json:"message"`
		Error   json.RawMessage `json:"error"`
	}
	if json.Unmarshal(b, &e) != nil {
		return false
	}
	if e.Message != "" {
		return true
	}
	var s string
	if json.Unmarshal(e.Error, &s) == nil {
		return s != ""
	}
	var inner struct {
		Message string `json:"message"`
	}
	return json.Unmarshal(e.Error, &inner) == nil && inner.Message != ""
}

// jsonTyped: the request says it carries JSON, or says nothing.
func jsonTyped(req *http.Request) bool {
	mt, _, err := mime.ParseMediaType(req.Header.Get("Content-Type"))
	return req.Header.Get("Content-Type") == "" || (err == nil && mt == "application/json")
}

// undecodable: a body that is neither empty (blank) nor one JSON value.
func undecodable(body []byte) bool {
	return len(bytes.TrimSpace(body)) > 0 && !json.Valid(body)
}

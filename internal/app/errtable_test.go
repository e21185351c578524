package app

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
	"github.com/bmaas/bmaas/api/inference"
	"github.com/bmaas/bmaas/pkg/apierr"
	"github.com/bmaas/bmaas/pkg/grpcsrv"
)

// failing answers every call with the error its resource name asks for:
// "code-5" is NotFound, with an ErrorInfo detail.
func failing(name string) error {
	n, err := strconv.Atoi(strings.TrimPrefix(name, "code-"))
	if err != nil {
		return status.Error(codes.InvalidArgument, "not a code-N name")
	}
	s, _ := status.New(codes.Code(n), "failed with "+codes.Code(n).String()).
		WithDetails(&errdetails.ErrorInfo{Reason: "TEST_" + strconv.Itoa(n), Domain: "bmaas.io"})
	return s.Err()
}

type failingRegistry struct {
	registryv1.UnimplementedRegistryServiceServer
}

func (failingRegistry) GetModel(_ context.Context, r *registryv1.GetModelRequest) (*registryv1.GetModelResponse, error) {
	return nil, failing(r.GetName())
}

func (failingRegistry) CreateModelVersion(s registryv1.RegistryService_CreateModelVersionServer) error {
	m, err := s.Recv()
	if err != nil {
		return err
	}
	return failing(m.GetHeader().GetModel())
}

func (failingRegistry) DownloadModelVersion(r *registryv1.DownloadModelVersionRequest, _ registryv1.RegistryService_DownloadModelVersionServer) error {
	return failing(r.GetModel())
}

func (failingRegistry) UploadDataset(s registryv1.RegistryService_UploadDatasetServer) error {
	m, err := s.Recv()
	if err != nil {
		return err
	}
	return failing(m.GetHeader().GetName())
}

func (failingRegistry) DownloadDataset(r *registryv1.DownloadDatasetRequest, _ registryv1.RegistryService_DownloadDatasetServer) error {
	return failing(r.GetDataset())
}

type failingInference struct {
	inference.UnimplementedGRPCInferenceServiceServer
}

func (failingInference) ModelInfer(_ context.Context, r *inference.ModelInferRequest) (*inference.ModelInferResponse, error) {
	return nil, failing(r.GetModelName())
}

func (failingInference) ModelMetadata(_ context.Context, r *inference.ModelMetadataRequest) (*inference.ModelMetadataResponse, error) {
	return nil, failing(r.GetName())
}

func (failingInference) ModelReady(_ context.Context, r *inference.ModelReadyRequest) (*inference.ModelReadyResponse, error) {
	return nil, failing(r.GetName())
}

// failingEdge serves the HTTP edge, as newHTTPServer builds it, over a
// gRPC server whose calls fail as failing says, on a real HTTP server.
func failingEdge(t *testing.T, reg *prometheus.Registry, opts ...func(*edge)) string {
	t.Helper()
	var cfg Config
	cfg.RegisterFlags(flag.NewFlagSet("edge", flag.ContinueOnError))
	cfg.GRPC.Addr = "127.0.0.1:0"
	srv, err := grpcsrv.New(cfg.GRPC, grpcsrv.Deps{})
	require.NoError(t, err)
	registryv1.RegisterRegistryServiceServer(srv.GRPC(), failingRegistry{})
	inference.RegisterGRPCInferenceServiceServer(srv.GRPC(), failingInference{})
	go func() { _ = srv.Serve() }()
	t.Cleanup(func() { srv.Shutdown(context.Background()) })
	conn, err := grpc.NewClient(srv.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	e := edge{cfg: cfg.HTTP, token: fuzzToken, reg: reg, ready: func() bool { return true }, maxInferBytes: 1 << 20}
	for _, o := range opts {
		o(&e)
	}
	hs, err := newHTTPServer(t.Context(), conn, e)
	require.NoError(t, err)
	ts := httptest.NewServer(hs.Handler)
	t.Cleanup(ts.Close)
	return ts.URL
}

type answer struct {
	status int
	body   any // the decoded JSON body
}

func call(t *testing.T, base, method, path, ctype, body string) answer {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, base+path, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+fuzzToken)
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, "application/json", resp.Header.Get("Content-Type"), "%s %s: %s", method, path, b)
	var a answer
	a.status = resp.StatusCode
	require.NoError(t, json.Unmarshal(b, &a.body), "%s %s: %s", method, path, b)
	return a
}

// Every gRPC code reaches an HTTP client with one status, whatever the
// route: a generated one (grpc-gateway), each hand-written REST route
// (the same google.rpc.Status body, details included) and each KServe v2
// route ({"error": message}).
func TestEveryRouteAnswersAnErrorAlike(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	base := failingEdge(t, reg)
	infer := `{"inputs":[{"name":"input","datatype":"FP64","shape":[1,1],"data":[1]}]}`
	rest := []struct{ method, path, ctype, body string }{
		{"PUT", "/v1/models/%s/artifact?format=onnx", "application/octet-stream", "bytes"},
		{"GET", "/v1/models/%s/versions/1/artifact", "", ""},
		{"PUT", "/v1/datasets/%s/csv", "text/csv", "a,b\n1,2\n"},
		{"GET", "/v1/datasets/%s/versions/1/csv", "", ""},
		{"POST", "/v1/models/%s:predict", "application/json", `{"instances":[[1]]}`},
	}
	kserve := []struct{ method, path, body string }{
		{"POST", "/v2/models/%s/infer", infer},
		{"POST", "/v2/models/%s/versions/1/infer", infer},
		{"GET", "/v2/models/%s", ""},
		{"GET", "/v2/models/%s/ready", ""},
	}
	for c := codes.Canceled; c <= codes.Unauthenticated; c++ {
		t.Run(c.String(), func(t *testing.T) {
			t.Parallel()
			name := "code-" + strconv.Itoa(int(c))
			want := call(t, base, "GET", "/v1/models/"+name, "", "")
			require.Equal(t, apierr.HTTPStatus(c), want.status)
			require.Equal(t, map[string]any{"code": float64(c), "message": "failed with " + c.String(),
				"details": []any{map[string]any{"@type": "type.googleapis.com/google.rpc.ErrorInfo",
					"reason": "TEST_" + strconv.Itoa(int(c)), "domain": "bmaas.io"}}}, want.body)
			for _, r := range rest {
				got := call(t, base, r.method, strings.Replace(r.path, "%s", name, 1), r.ctype, r.body)
				require.Equal(t, want, got, "%s %s", r.method, r.path)
			}
			for _, r := range kserve {
				got := call(t, base, r.method, strings.Replace(r.path, "%s", name, 1), "application/json", r.body)
				require.Equal(t, answer{want.status, map[string]any{"error": "failed with " + c.String()}}, got, "%s %s", r.method, r.path)
			}
		})
	}
}

// The table is grpc-gateway's but for ResourceExhausted, which is 413:
// in bmaas it is always a size limit, never a rate.
func TestHTTPStatusTable(t *testing.T) {
	t.Parallel()
	for c := codes.OK; c <= codes.Unauthenticated; c++ {
		want := runtime.HTTPStatusFromCode(c)
		if c == codes.ResourceExhausted {
			want = http.StatusRequestEntityTooLarge
		}
		require.Equal(t, want, apierr.HTTPStatus(c), c.String())
	}
	require.Equal(t, http.StatusInternalServerError, apierr.HTTPStatus(codes.Code(99)))
}

// The edge's own refusals (the token, the guard, routing) answer in the
// same body as the services' errors, and KServe v2's under /v2.
func TestEdgeRefusalsShareTheBody(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	base := failingEdge(t, reg)
	do := func(method, path, ctype, auth string) (int, map[string]any, http.Header) {
		req, err := http.NewRequestWithContext(t.Context(), method, base+path, strings.NewReader("x"))
		require.NoError(t, err)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		req.Header.Set("Content-Type", ctype)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		var body map[string]any
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
		return resp.StatusCode, body, resp.Header
	}
	tok := "Bearer " + fuzzToken
	st, body, h := do("GET", "/v1/models", "", "")
	require.Equal(t, http.StatusUnauthorized, st)
	require.Equal(t, "Bearer", h.Get("WWW-Authenticate"))
	require.Equal(t, map[string]any{"code": float64(codes.Unauthenticated), "message": "missing or invalid bearer token", "details": []any{}}, body)
	st, body, _ = do("POST", "/v2/models/m/infer", "application/json", "Bearer wrong")
	require.Equal(t, http.StatusUnauthorized, st)
	require.Equal(t, map[string]any{"error": "missing or invalid bearer token"}, body)

	st, body, _ = do("POST", "/v1/models", "text/plain", tok)
	require.Equal(t, http.StatusUnsupportedMediaType, st)
	require.Equal(t, float64(codes.InvalidArgument), body["code"])
	require.Contains(t, body, "details")

	st, body, _ = do("DELETE", "/v1/models", "application/json", tok)
	require.Equal(t, http.StatusMethodNotAllowed, st)
	require.Equal(t, float64(codes.Unimplemented), body["code"])
	require.Contains(t, body, "details")
}

// Every request is counted and timed by route pattern (grpc-gateway's
// template or the ServeMux pattern, never the path), method and code.
func TestHTTPMetricsByRoute(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	base := failingEdge(t, reg)
	call(t, base, "GET", "/v1/models/code-5", "", "")
	call(t, base, "GET", "/v1/models/code-3", "", "")
	call(t, base, "GET", "/v1/models/code-6/versions/1/artifact", "", "")
	call(t, base, "POST", "/v2/models/code-14/infer", "application/json",
		`{"inputs":[{"name":"input","datatype":"FP64","shape":[1,1],"data":[1]}]}`)
	req, err := http.NewRequestWithContext(t.Context(), "GET", base+"/v1/nothing/here", nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	_ = resp.Body.Close()

	c := func(route, method, code string) float64 { return counterValue(t, reg, route, method, code) }
	require.InDelta(t, 1, c("/v1/models/{name}", "GET", "404"), 0)
	require.InDelta(t, 1, c("/v1/models/{name}", "GET", "400"), 0)
	require.InDelta(t, 1, c("/v1/models/{model}/versions/{version}/artifact", "GET", "409"), 0)
	require.InDelta(t, 1, c("/v2/models/{name}/infer", "POST", "503"), 0)
	require.InDelta(t, 1, c(routeUnmatched, "GET", "401"), 0)
	n, err := testutil.GatherAndCount(reg, "bmaas_http_request_duration_seconds")
	require.NoError(t, err)
	require.Equal(t, 5, n)
}

// counterValue is the request counter of one label set in reg.
func counterValue(t *testing.T, reg *prometheus.Registry, route, method, code string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != "bmaas_http_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			l := map[string]string{}
			for _, p := range m.GetLabel() {
				l[p.GetName()] = p.GetValue()
			}
			if l["route"] == route && l["method"] == method && l["code"] == code {
				return m.GetCounter().GetValue()
			}
		}
	}
	t.Fatalf("no bmaas_http_requests_total{route=%q,method=%q,code=%q}", route, method, code)
	return 0
}

// A handler's panic is logged and answers 500 in the route's shape; the
// request is counted with its 500.
func TestPanicAnswers500(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	met, err := newHTTPMetrics(reg)
	require.NoError(t, err)
	var logs bytes.Buffer
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/boom/{x}", func(http.ResponseWriter, *http.Request) { panic("boom") })
	h := observe(met, nil, mux, recoverHTTP(slog.New(slog.NewTextHandler(&logs, nil)), muxRoute(mux)))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/v1/boom/1", nil))
	require.Equal(t, http.StatusInternalServerError, w.Code)
	require.JSONEq(t, `{"code":13,"message":"internal error","details":[]}`, w.Body.String())
	require.Contains(t, logs.String(), "boom")
	require.InDelta(t, 1, testutil.ToFloat64(met.requests.WithLabelValues("/v1/boom/{x}", "GET", "500")), 0)
}

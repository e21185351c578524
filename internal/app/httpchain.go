package app

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	otelcodes "go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/bmaas/bmaas/pkg/apierr"
)

// The HTTP edge is one chain for every route, generated (grpc-gateway)
// and hand-written alike, outermost first:
//
//	observe   metrics and a server span, labelled by route pattern
//	recover   a panic is logged and answers 500 in the route's shape
//	guard     pkg/httpedge: host, CORS, cross-site, content type, size
//	auth      pkg/iam's guard: the caller's token (401), and the routes of
//	          the edge's own authorized by pkg/authz (403, 404)
//	mux       the routes; grpc-gateway's errors go through restError
//
// Every error answer takes its HTTP status from apierr.HTTPStatus and its
// body from apierr: google.rpc.Status JSON on the REST API, KServe v2's
// {"error": "..."} under /v2, the OpenAI API's {"error": {...}} under
// /openai (apierr.WriteRouteStatus).

// writeHTTPError answers s with the HTTP status code in the shape of the
// route of r.
func writeHTTPError(w http.ResponseWriter, r *http.Request, code int, s *status.Status) {
	apierr.WriteRouteStatus(w, r.URL.Path, code, s)
}

// restError is grpc-gateway's error handler: the status of the gRPC
// answer through apierr's table (or the routing status grpc-gateway
// chose, such as 405), in the body every route uses.
func restError(_ context.Context, _ *runtime.ServeMux, _ runtime.Marshaler, w http.ResponseWriter, r *http.Request, err error) {
	code := 0
	var hs *runtime.HTTPStatusError
	if errors.As(err, &hs) {
		code, err = hs.HTTPStatus, hs.Err
	}
	s := status.Convert(err)
	if code == 0 {
		code = apierr.HTTPStatus(s.Code())
	}
	writeHTTPError(w, r, code, s)
}

// routeKey holds the *routeLabel of a request in its context.
type routeKey struct{}

// routeLabel is the pattern of the route that served a request, set by
// whichever router matched it first.
type routeLabel struct{ pattern string }

func setRoute(ctx context.Context, pattern string) {
	if l, ok := ctx.Value(routeKey{}).(*routeLabel); ok && l.pattern == "" {
		l.pattern = pattern
	}
}

// gatewayRoute is grpc-gateway middleware that names the route of a
// generated handler by its path template (/v1/models/{name}).
func gatewayRoute(next runtime.HandlerFunc) runtime.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request, params map[string]string) {
		if p, ok := runtime.HTTPPattern(r.Context()); ok {
			// The template as the proto writes it: {name=*} is {name}.
			setRoute(r.Context(), strings.ReplaceAll(p.String(), "=*}", "}"))
		}
		next(w, r, params)
	}
}

// muxRoute names the route of a hand-written handler by its ServeMux
// pattern without the method (/v1/models/{model}/artifact); the
// catch-all "/" (grpc-gateway) names its own.
func muxRoute(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mux.ServeHTTP(w, r)
		if p := patternPath(r.Pattern); p != "" && p != "/" {
			setRoute(r.Context(), p)
		}
	})
}

func patternPath(p string) string {
	if i := strings.IndexByte(p, ' '); i >= 0 {
		return p[i+1:]
	}
	return p
}

// routeUnmatched labels the requests no route served: unknown paths and
// requests the guard or the token refused before routing.
const routeUnmatched = "unmatched"

// httpMetrics count the edge's requests and time them.
type httpMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newHTTPMetrics(reg prometheus.Registerer) (*httpMetrics, error) {
	labels := []string{"route", "method", "code"}
	m := &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bmaas_http_requests_total",
			Help: "HTTP requests the edge answered, by route pattern, method and status code.",
		}, labels),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "bmaas_http_request_duration_seconds",
			Help:    "Time the edge took to answer an HTTP request, by route pattern, method and status code.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, labels),
	}
	if err := reg.Register(m.requests); err != nil {
		return nil, err
	}
	if err := reg.Register(m.duration); err != nil {
		return nil, err
	}
	return m, nil
}

// methodLabel bounds the method label to the methods HTTP defines.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	}
	return "OTHER"
}

// observe is the outermost link: it counts and times every request by
// route pattern, method and code and, with a tracer, runs it in a server
// span (continuing the caller's W3C trace context).
func observe(m *httpMetrics, tracer trace.Tracer, mux *http.ServeMux, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		label := &routeLabel{}
		ctx := context.WithValue(r.Context(), routeKey{}, label)
		var span trace.Span
		if tracer != nil {
			ctx = propagation.TraceContext{}.Extract(ctx, propagation.HeaderCarrier(r.Header))
			ctx, span = tracer.Start(ctx, "HTTP "+methodLabel(r.Method), trace.WithSpanKind(trace.SpanKindServer))
		}
		sw := &statusWriter{ResponseWriter: w}
		defer func() {
			code := sw.code
			if code == 0 {
				code = http.StatusOK
			}
			route := label.pattern
			if route == "" {
				route = routeUnmatched
				if _, p := mux.Handler(r); patternPath(p) != "/" && p != "" {
					route = patternPath(p)
				}
			}
			method, c := methodLabel(r.Method), strconv.Itoa(code)
			m.requests.WithLabelValues(route, method, c).Inc()
			m.duration.WithLabelValues(route, method, c).Observe(time.Since(start).Seconds())
			if span != nil {
				span.SetName(method + " " + route)
				span.SetAttributes(attribute.String("http.route", route), attribute.String("http.request.method", method),
					attribute.Int("http.response.status_code", code))
				if code >= 500 {
					span.SetStatus(otelcodes.Error, http.StatusText(code))
				}
				span.End()
			}
		}()
		next.ServeHTTP(sw, r.WithContext(ctx))
	})
}

// recoverHTTP turns a panic of a handler into a 500 in the route's error
// shape, logged with its stack. A handler that had already begun its
// answer has its connection aborted instead, so the client cannot take a
// cut answer for a whole one.
func recoverHTTP(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if v == http.ErrAbortHandler { //nolint:errorlint // the sentinel is panicked as is
				panic(v)
			}
			log.Error("http handler panic", "method", r.Method, "path", r.URL.Path, "panic", v, "stack", string(debug.Stack()))
			if sw, ok := w.(*statusWriter); ok && sw.code != 0 {
				panic(http.ErrAbortHandler)
			}
			writeHTTPError(w, r, http.StatusInternalServerError, status.New(codes.Internal, "internal error"))
		}()
		next.ServeHTTP(w, r)
	})
}

// statusWriter remembers the status code of the answer.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 && code >= 200 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Flush keeps streaming answers (job logs, downloads) streaming.
func (w *statusWriter) Flush() {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the connection.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

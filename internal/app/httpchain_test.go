package app

import (
	"net/http"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	otelcodes "go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// With a tracer, every request runs in a server span named by its method
// and route pattern, continuing the caller's W3C trace context, with the
// status code; hand-written routes as generated ones.
func TestHTTPSpansByRoute(t *testing.T) {
	t.Parallel()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	base := failingEdge(t, prometheus.NewRegistry(), func(e *edge) { e.tracer = tp })

	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	for _, path := range []string{"/v1/models/code-5", "/v1/models/code-14/versions/1/artifact"} {
		req, err := http.NewRequestWithContext(t.Context(), "GET", base+path, nil)
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+fuzzToken)
		req.Header.Set("traceparent", "00-"+traceID+"-00f067aa0ba902b7-01")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		_ = resp.Body.Close()
	}
	spans := rec.Ended()
	require.Len(t, spans, 2)
	want := []struct {
		name string
		code int64
		st   otelcodes.Code
	}{{"GET /v1/models/{name}", 404, otelcodes.Unset}, {"GET /v1/models/{model}/versions/{version}/artifact", 503, otelcodes.Error}}
	for i, sp := range spans {
		require.Equal(t, want[i].name, sp.Name())
		require.Equal(t, traceID, sp.SpanContext().TraceID().String())
		require.Equal(t, "00f067aa0ba902b7", sp.Parent().SpanID().String())
		require.Contains(t, sp.Attributes(), attribute.Int64("http.response.status_code", want[i].code))
		require.Equal(t, want[i].st, sp.Status().Code)
	}
}

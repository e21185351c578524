package gateway

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// A body over the limit is a 413 in KServe v2's shape on /v2 and in the
// REST API's on :predict, and the connection closes after the answer
// whether the length was declared or not (chunked).
func TestBodyOverTheLimitClosesTheConnection(t *testing.T) {
	t.Parallel()
	a := restAPI{maxBytes: 8}
	for _, declared := range []bool{true, false} {
		r := httptest.NewRequest("POST", "/v2/models/m/infer", strings.NewReader(`{"inputs":[]}`))
		if !declared {
			r.ContentLength = -1
		}
		r.SetPathValue("name", "m")
		w := httptest.NewRecorder()
		a.restInfer(w, r)
		require.Equal(t, http.StatusRequestEntityTooLarge, w.Code)
		require.Equal(t, "close", w.Header().Get("Connection"), "declared %v", declared)
		require.Contains(t, w.Body.String(), `{"error":"request body`)

		r = httptest.NewRequest("POST", "/v1/models/m:predict", strings.NewReader(`{"instances":[[1]]}`))
		if !declared {
			r.ContentLength = -1
		}
		w = httptest.NewRecorder()
		a.restPredict(w, r, "m")
		require.Equal(t, http.StatusRequestEntityTooLarge, w.Code)
		require.Equal(t, "close", w.Header().Get("Connection"), "declared %v", declared)
		require.Contains(t, w.Body.String(), `"code":8,"message":"request body`)
	}
}

package gateway

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestRequestID(t *testing.T) {
	require.Equal(t, "order-42", requestID("order-42"), "the client's, kept")
	for _, bad := range []string{"", "has space", "new\nline", strings.Repeat("x", 129), "é"} {
		id := requestID(bad)
		require.Len(t, id, 32, "a new one for %q", bad)
		require.True(t, validRequestID(id))
	}
	require.NotEqual(t, requestID(""), requestID(""))

	var seen string
	h := withRequestID(func(w http.ResponseWriter, r *http.Request) { seen = requestIDOf(r.Context()) })
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodPost, "/v2/models/m/infer", nil)
	req.Header.Set("X-Request-Id", "abc-1")
	h(rec, req)
	require.Equal(t, "abc-1", seen)
	require.Equal(t, "abc-1", rec.Header().Get("X-Request-Id"))
	rec = httptest.NewRecorder()
	h(rec, httptest.NewRequest(http.MethodPost, "/v2/models/m/infer", nil))
	require.Len(t, rec.Header().Get("X-Request-Id"), 32)
	require.Equal(t, rec.Header().Get("X-Request-Id"), seen)
}

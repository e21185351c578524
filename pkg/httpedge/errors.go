package httpedge

import (
	"encoding/json"
	"net/http"
	"strings"
)

// gRPC codes of the edge's refusals, as the REST API's error bodies
// carry them.
const (
	codeInvalidArgument   = 3
	codePermissionDenied  = 7
	codeResourceExhausted = 8
)

// writeError answers in the shape of the route's protocol: KServe v2's
// {"error": "..."} under /v2, else the REST API's {"code", "message"}.
func writeError(w http.ResponseWriter, r *http.Request, status, code int, msg string) {
	var body any = map[string]any{"code": code, "message": msg}
	if r.URL.Path == "/v2" || strings.HasPrefix(r.URL.Path, "/v2/") {
		body = map[string]string{"error": msg}
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

package httpedge

import (
	"net/http"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/bmaas/bmaas/pkg/apierr"
)

// gRPC codes of the edge's refusals, as the REST API's error bodies
// carry them.
const (
	codeInvalidArgument   = codes.InvalidArgument
	codePermissionDenied  = codes.PermissionDenied
	codeResourceExhausted = codes.ResourceExhausted
)

// writeError answers a refusal of the edge with its own HTTP status, in
// the shape of the route's protocol: KServe v2's {"error": "..."} under
// /v2, else the REST API's google.rpc.Status ({"code", "message",
// "details"}), as every route of the API answers its errors.
func writeError(w http.ResponseWriter, r *http.Request, httpStatus int, code codes.Code, msg string) {
	apierr.WriteRouteStatus(w, r.URL.Path, httpStatus, status.New(code, msg))
}

package app

import (
	"context"
	"net/http"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// routingError answers a path that the REST API serves, but not for the
// request's method, with 405: grpc-gateway's default makes it
// Unimplemented, a 501, as if the server had a fault. Unknown paths stay
// a 404 (grpc-gateway's default, which answers through restError too).
func routingError(ctx context.Context, mux *runtime.ServeMux, m runtime.Marshaler, w http.ResponseWriter, r *http.Request, code int) {
	if code != http.StatusMethodNotAllowed {
		runtime.DefaultRoutingErrorHandler(ctx, mux, m, w, r, code)
		return
	}
	restError(ctx, mux, m, w, r, &runtime.HTTPStatusError{HTTPStatus: code,
		Err: status.Errorf(codes.Unimplemented, "method: %s is not allowed on %s", r.Method, r.URL.Path)})
}

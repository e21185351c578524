package gateway

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
)

// Every inference request has an id: the client's X-Request-Id (gRPC
// metadata x-request-id) when it sends a usable one, else one the gateway
// makes. The answer carries it back (a response header, gRPC header
// metadata), and a replica reached over HTTP gets it, so a client, the
// gateway and the replica name a request alike (the payload log and
// feedback key on it).
const (
	requestIDHeader = "X-Request-Id"
	requestIDKey    = "x-request-id"
	maxRequestID    = 128
)

// requestID is the client's id when usable (1 to 128 printable ASCII
// characters without spaces), else a new one.
func requestID(given string) string {
	if validRequestID(given) {
		return given
	}
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func validRequestID(s string) bool {
	if s == "" || len(s) > maxRequestID {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

type requestIDCtxKey struct{}

// withRequestID gives an HTTP inference route its request id: in the
// request's context (requestIDOf) and in the answer's header.
func withRequestID(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id := requestID(r.Header.Get(requestIDHeader))
		w.Header().Set(requestIDHeader, id)
		h(w, r.WithContext(context.WithValue(r.Context(), requestIDCtxKey{}, id)))
	}
}

// grpcRequestID gives a gRPC inference call its request id and sends it
// back in the header metadata.
func grpcRequestID(ctx context.Context) context.Context {
	given := ""
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		if v := md.Get(requestIDKey); len(v) > 0 {
			given = v[0]
		}
	}
	id := requestID(given)
	_ = grpc.SetHeader(ctx, metadata.Pairs(requestIDKey, id))
	return context.WithValue(ctx, requestIDCtxKey{}, id)
}

// requestIDOf is the request id of ctx, or "".
func requestIDOf(ctx context.Context) string {
	id, _ := ctx.Value(requestIDCtxKey{}).(string)
	return id
}

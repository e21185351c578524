package apierr

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
)

// httpStatus is the one table from gRPC code to HTTP status, for every
// HTTP route: grpc-gateway's (runtime.HTTPStatusFromCode) with one
// change, ResourceExhausted is 413. In bmaas it is always a size limit
// (an artifact, a dataset, a request body, an etcd value), which a client
// must not retry as 429 tells it to, and the edge's own body limit is a
// 413 too.
var httpStatus = [...]int{
	codes.OK:                 http.StatusOK,
	codes.Canceled:           499, // the client closed the request (nginx's code, grpc-gateway's too)
	codes.Unknown:            http.StatusInternalServerError,
	codes.InvalidArgument:    http.StatusBadRequest,
	codes.DeadlineExceeded:   http.StatusGatewayTimeout,
	codes.NotFound:           http.StatusNotFound,
	codes.AlreadyExists:      http.StatusConflict,
	codes.PermissionDenied:   http.StatusForbidden,
	codes.ResourceExhausted:  http.StatusRequestEntityTooLarge,
	codes.FailedPrecondition: http.StatusBadRequest,
	codes.Aborted:            http.StatusConflict,
	codes.OutOfRange:         http.StatusBadRequest,
	codes.Unimplemented:      http.StatusNotImplemented,
	codes.Internal:           http.StatusInternalServerError,
	codes.Unavailable:        http.StatusServiceUnavailable,
	codes.DataLoss:           http.StatusInternalServerError,
	codes.Unauthenticated:    http.StatusUnauthorized,
}

// HTTPStatus is the HTTP status of a gRPC code; 500 for a code it does
// not know.
func HTTPStatus(c codes.Code) int {
	if int(c) < len(httpStatus) {
		return httpStatus[c]
	}
	return http.StatusInternalServerError
}

// Body is the JSON body of an error answer of the REST API, the
// google.rpc.Status of s as grpc-gateway writes it, with every field
// present: {"code":5,"message":"...","details":[{"@type":...}]}.
func Body(s *status.Status) []byte {
	p := s.Proto()
	out := struct {
		Code    int32             `json:"code"`
		Message string            `json:"message"`
		Details []json.RawMessage `json:"details"`
	}{Code: p.GetCode(), Message: p.GetMessage(), Details: make([]json.RawMessage, 0, len(p.GetDetails()))}
	for _, d := range p.GetDetails() {
		// A detail whose type is not linked in is left out: the code and
		// the message still reach the client.
		if b, err := detailJSON.Marshal(d); err == nil {
			out.Details = append(out.Details, b)
		}
	}
	b, _ := json.Marshal(out)
	return append(b, '\n')
}

var detailJSON = protojson.MarshalOptions{UseProtoNames: true}

// WriteHTTP answers err on a REST route: the HTTP status of its code
// (after ToStatus, so internals stay hidden) and its Body.
func WriteHTTP(w http.ResponseWriter, err error) {
	s := status.Convert(ToStatus(err))
	WriteHTTPStatus(w, HTTPStatus(s.Code()), s)
}

// WriteHTTPStatus answers s with an HTTP status of the caller's choosing
// (a refusal of the edge itself, a 405), in the same body.
func WriteHTTPStatus(w http.ResponseWriter, code int, s *status.Status) {
	h := w.Header()
	h.Del("Trailer")
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	if s.Code() == codes.Unauthenticated {
		h.Set("WWW-Authenticate", "Bearer")
	}
	w.WriteHeader(code)
	_, _ = w.Write(Body(s))
}

// WriteKServe answers err on a KServe v2 route (/v2/...): the HTTP status
// of its code, in the protocol's body {"error": "..."}.
func WriteKServe(w http.ResponseWriter, err error) {
	s := status.Convert(ToStatus(err))
	WriteKServeStatus(w, HTTPStatus(s.Code()), s.Message())
}

// WriteKServeStatus answers msg with an HTTP status of the caller's
// choosing in the KServe v2 body.
func WriteKServeStatus(w http.ResponseWriter, code int, msg string) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

// WriteOpenAI answers err on an OpenAI-compatible route (/openai/v1/...):
// the HTTP status of its code, in the OpenAI API's error body
// {"error": {"message", "type", "param", "code"}}. param is the field a
// FieldError names; code is set where the OpenAI API sets one.
func WriteOpenAI(w http.ResponseWriter, err error) {
	param := FieldOf(err)
	s := status.Convert(ToStatus(err))
	code := ""
	switch s.Code() {
	case codes.NotFound:
		code = "model_not_found"
	case codes.DeadlineExceeded:
		code = "timeout"
	}
	WriteOpenAIStatus(w, HTTPStatus(s.Code()), s.Message(), openAIType(s.Code()), param, code)
}

// WriteOpenAIStatus answers an OpenAI-shaped error with the status,
// message, type, param and code given (empty param and code are null).
func WriteOpenAIStatus(w http.ResponseWriter, httpCode int, msg, typ, param, code string) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(httpCode)
	_, _ = w.Write(OpenAIBody(msg, typ, param, code))
}

// OpenAIBody is the OpenAI API's error body.
func OpenAIBody(msg, typ, param, code string) []byte {
	null := func(s string) any {
		if s == "" {
			return nil
		}
		return s
	}
	b, _ := json.Marshal(map[string]any{"error": map[string]any{"message": msg, "type": typ, "param": null(param), "code": null(code)}})
	return append(b, '\n')
}

// openAIType is the OpenAI API's error type of a gRPC code.
func openAIType(c codes.Code) string {
	switch c {
	case codes.Unauthenticated:
		return "authentication_error"
	case codes.PermissionDenied:
		return "permission_error"
	case codes.ResourceExhausted:
		return "invalid_request_error"
	case codes.Unavailable, codes.DeadlineExceeded:
		return "service_unavailable"
	case codes.Internal, codes.Unknown, codes.DataLoss:
		return "server_error"
	}
	if HTTPStatus(c) < 500 {
		return "invalid_request_error"
	}
	return "server_error"
}

// WriteRouteStatus answers s with the HTTP status given, in the error
// shape of the protocol of the route at path: KServe v2's under /v2, the
// OpenAI API's under /openai/, else the REST API's google.rpc.Status.
func WriteRouteStatus(w http.ResponseWriter, path string, httpCode int, s *status.Status) {
	switch {
	case path == "/v2" || strings.HasPrefix(path, "/v2/"):
		WriteKServeStatus(w, httpCode, s.Message())
	case strings.HasPrefix(path, "/openai/"):
		if s.Code() == codes.Unauthenticated {
			w.Header().Set("WWW-Authenticate", "Bearer")
		}
		WriteOpenAIStatus(w, httpCode, s.Message(), openAIType(s.Code()), "", "")
	default:
		WriteHTTPStatus(w, httpCode, s)
	}
}

// FieldOf is the field a FieldError in err names, or "".
func FieldOf(err error) string {
	var fe *FieldError
	if errors.As(err, &fe) {
		return fe.Field
	}
	return ""
}

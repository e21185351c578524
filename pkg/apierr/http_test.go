package apierr

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// The OpenAI routes answer the OpenAI API's error shape: the field a
// FieldError names as param, model_not_found for a NotFound.
func TestWriteOpenAI(t *testing.T) {
	rec := httptest.NewRecorder()
	WriteOpenAI(rec, Invalid("max_tokens", "5000 is over the context of 256 tokens"))
	require.Equal(t, http.StatusBadRequest, rec.Code)
	require.JSONEq(t, `{"error":{"message":"max_tokens: 5000 is over the context of 256 tokens","type":"invalid_request_error","param":"max_tokens","code":null}}`, rec.Body.String())

	rec = httptest.NewRecorder()
	WriteOpenAI(rec, NotFound("deployment", "chat"))
	require.Equal(t, http.StatusNotFound, rec.Code)
	require.Contains(t, rec.Body.String(), `"code":"model_not_found"`)
	require.Contains(t, rec.Body.String(), `"type":"invalid_request_error"`)

	rec = httptest.NewRecorder()
	WriteRouteStatus(rec, "/openai/v1/models", http.StatusUnauthorized, status.New(codes.Unauthenticated, "missing or invalid bearer token"))
	require.Equal(t, "Bearer", rec.Header().Get("WWW-Authenticate"))
	require.JSONEq(t, `{"error":{"message":"missing or invalid bearer token","type":"authentication_error","param":null,"code":null}}`, rec.Body.String())
	rec = httptest.NewRecorder()
	WriteRouteStatus(rec, "/v2/models/m/infer", http.StatusBadRequest, status.New(codes.InvalidArgument, "x: bad"))
	require.JSONEq(t, `{"error":"x: bad"}`, rec.Body.String())
}

// Package apierr holds the error categories that every service's domain
// errors wrap, the one table that maps them to gRPC status codes at the
// gRPC edge (ToStatus, run by pkg/grpcsrv's interceptors), and the one
// table that maps a gRPC code to an HTTP status at the HTTP edge
// (HTTPStatus), with the two bodies an HTTP error has: google.rpc.Status
// JSON on the REST API (WriteHTTP) and {"error": "..."} on KServe v2
// routes (WriteKServe). A domain package declares its own sentinels with
// New, or wraps a category with fmt.Errorf("...: %w", apierr.ErrNotFound).
package apierr

import (
	"errors"
	"fmt"
)

// Categories. Each maps to one gRPC code in ToStatus.
var (
	ErrInvalidArgument    = errors.New("invalid argument")
	ErrNotFound           = errors.New("not found")
	ErrAlreadyExists      = errors.New("already exists")
	ErrFailedPrecondition = errors.New("failed precondition")
	// ErrConflict is a lost optimistic-concurrency race (a stale revision).
	ErrConflict          = errors.New("conflict")
	ErrResourceExhausted = errors.New("resource exhausted")
	ErrUnauthenticated   = errors.New("unauthenticated")
	ErrPermissionDenied  = errors.New("permission denied")
	ErrUnavailable       = errors.New("unavailable")
	ErrUnimplemented     = errors.New("unimplemented")
)

// FieldError is an invalid argument that names the field at fault.
type FieldError struct {
	Field string
	Msg   string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }

// Unwrap makes a FieldError an ErrInvalidArgument.
func (e *FieldError) Unwrap() error { return ErrInvalidArgument }

// Invalid returns an ErrInvalidArgument naming field.
func Invalid(field, format string, args ...any) error {
	return &FieldError{Field: field, Msg: fmt.Sprintf(format, args...)}
}

// NotFound returns an ErrNotFound for a named object: `model "iris" not found`.
func NotFound(kind, name string) error {
	return fmt.Errorf("%s %q %w", kind, name, ErrNotFound)
}

// AlreadyExists returns an ErrAlreadyExists for a named object.
func AlreadyExists(kind, name string) error {
	return fmt.Errorf("%s %q %w", kind, name, ErrAlreadyExists)
}

// Precondition returns an ErrFailedPrecondition with a message.
func Precondition(format string, args ...any) error {
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), ErrFailedPrecondition)
}

// Conflict returns an ErrConflict with a message.
func Conflict(format string, args ...any) error {
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), ErrConflict)
}

// Exhausted returns an ErrResourceExhausted with a message.
func Exhausted(format string, args ...any) error {
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), ErrResourceExhausted)
}

// Denied returns an ErrPermissionDenied with a message.
func Denied(format string, args ...any) error {
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), ErrPermissionDenied)
}

package apierr

import (
	"context"
	"errors"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// table maps each category to its code; the first match wins.
var table = []struct {
	err  error
	code codes.Code
}{
	{ErrInvalidArgument, codes.InvalidArgument},
	{ErrNotFound, codes.NotFound},
	{ErrAlreadyExists, codes.AlreadyExists},
	{ErrFailedPrecondition, codes.FailedPrecondition},
	{ErrConflict, codes.Aborted},
	{ErrResourceExhausted, codes.ResourceExhausted},
	{ErrUnauthenticated, codes.Unauthenticated},
	{ErrPermissionDenied, codes.PermissionDenied},
	{ErrUnavailable, codes.Unavailable},
	{ErrUnimplemented, codes.Unimplemented},
	{context.Canceled, codes.Canceled},
	{context.DeadlineExceeded, codes.DeadlineExceeded},
}

// Code returns the gRPC code for err: codes.OK for nil, the code of a
// status error as is, the table's code for a category, else Internal.
func Code(err error) codes.Code {
	if err == nil {
		return codes.OK
	}
	if s, ok := status.FromError(err); ok {
		return s.Code()
	}
	for _, e := range table {
		if errors.Is(err, e.err) {
			return e.code
		}
	}
	return codes.Internal
}

// ToStatus converts err into a gRPC status error. Messages of known
// categories pass through (they are written for users); unknown errors
// become Internal with a generic message so internals do not leak.
func ToStatus(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	code := Code(err)
	if code == codes.Internal {
		return status.Error(codes.Internal, "internal error")
	}
	return status.Error(code, message(err))
}

// message trims the category suffix that wrapping leaves: "x: not found"
// reads better as `x not found` and "field: msg" stays as is.
func message(err error) string {
	msg := err.Error()
	for _, e := range table {
		if e.err == context.Canceled || e.err == context.DeadlineExceeded {
			continue
		}
		suffix := ": " + e.err.Error()
		if strings.HasSuffix(msg, suffix) && !strings.HasSuffix(msg, " "+e.err.Error()+suffix) {
			return strings.TrimSuffix(msg, suffix)
		}
	}
	return msg
}

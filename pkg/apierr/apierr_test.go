package apierr

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestToStatus(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		err  error
		code codes.Code
		msg  string
	}{
		{"field", Invalid("model.name", "must match %s", "[a-z]"), codes.InvalidArgument, "model.name: must match [a-z]"},
		{"wrapped field", fmt.Errorf("create model: %w", Invalid("name", "empty")), codes.InvalidArgument, "create model: name: empty"},
		{"not found", NotFound("model", "iris"), codes.NotFound, `model "iris" not found`},
		{"exists", AlreadyExists("model", "iris"), codes.AlreadyExists, `model "iris" already exists`},
		{"conflict", Conflict("model %q changed", "iris"), codes.Aborted, `model "iris" changed`},
		{"precondition", Precondition("model has versions"), codes.FailedPrecondition, "model has versions"},
		{"exhausted", Exhausted("artifact over %d bytes", 10), codes.ResourceExhausted, "artifact over 10 bytes"},
		{"deadline", fmt.Errorf("x: %w", context.DeadlineExceeded), codes.DeadlineExceeded, "x: context deadline exceeded"},
		{"internal hidden", errors.New("open /secret/path: permission denied"), codes.Internal, "internal error"},
		{"status kept", status.Error(codes.Unavailable, "down"), codes.Unavailable, "down"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, ok := status.FromError(ToStatus(tc.err))
			require.True(t, ok)
			require.Equal(t, tc.code, s.Code())
			require.Equal(t, tc.msg, s.Message())
		})
	}
	require.NoError(t, ToStatus(nil))
	require.Equal(t, codes.OK, Code(nil))
}

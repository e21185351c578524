package evaluator

import (
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// grpcInputError reports a status from another service that a retry would
// not fix.
func grpcInputError(err error) bool {
	switch status.Code(err) {
	case codes.InvalidArgument, codes.NotFound, codes.FailedPrecondition, codes.ResourceExhausted, codes.OutOfRange:
		return true
	}
	return false
}

// isAborted reports a lost compare-and-swap in another service.
func isAborted(err error) bool { return status.Code(err) == codes.Aborted }

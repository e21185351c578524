package store

import (
	"errors"
	"fmt"
	"strings"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/bmaas/bmaas/pkg/apierr"
)

// TooLargeError is a write over what one etcd request may hold (etcd's
// --max-request-bytes, 1.5 MiB by default, or the client's gRPC send
// limit). It is an apierr.ErrResourceExhausted whose message is meant for
// users; the etcd error is not kept, so that its text never reaches them.
type TooLargeError struct {
	// Bytes is the size of the values written.
	Bytes int
}

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("too large to store: %d bytes in one write, over the control plane's limit per write", e.Bytes)
}

// Unwrap makes a TooLargeError an apierr.ErrResourceExhausted.
func (e *TooLargeError) Unwrap() error { return apierr.ErrResourceExhausted }

// IsTooLarge reports whether err is a write over etcd's request limit.
func IsTooLarge(err error) bool {
	var tl *TooLargeError
	return errors.As(err, &tl)
}

// tooLarge recognises etcd's and gRPC's refusals of a request by its size.
func tooLarge(err error) bool {
	if errors.Is(err, rpctypes.ErrRequestTooLarge) {
		return true
	}
	s, ok := status.FromError(err)
	return ok && s.Code() == codes.ResourceExhausted && strings.Contains(s.Message(), "larger than max")
}

package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// statusError is a gRPC status error that prints plainly as
// "Code: message" (`NotFound: model "foo" not found`) instead of grpc-go's
// "rpc error: code = ... desc = ...". It keeps the status, so
// status.Code and status.FromError still see it.
type statusError struct {
	s    *status.Status
	hint string // what the user may be missing (TLS flags)
}

func (e *statusError) Error() string {
	msg := e.s.Message()
	switch {
	case e.s.Code() == codes.Unavailable && len(e.s.Details()) == 0: // details: a server answered
		msg = "cannot reach the bmaas server (is it running? see --server): " + msg + e.hint
	case e.s.Code() == codes.DeadlineExceeded && msg == context.DeadlineExceeded.Error():
		msg = "the request took longer than --timeout"
	}
	return fmt.Sprintf("%s: %s", e.s.Code(), msg)
}

func (e *statusError) GRPCStatus() *status.Status { return e.s }

// plainError converts a gRPC status error into a statusError and leaves
// every other error (nil and io.EOF included) alone.
func plainError(err error) error {
	if err == nil || err == io.EOF {
		return err
	}
	var se *statusError
	if errors.As(err, &se) {
		return err
	}
	if s, ok := status.FromError(err); ok {
		return &statusError{s: s}
	}
	return err
}

// errorHints turns status errors into statusErrors; an unreachable
// server gets hint appended (what the TLS flags may be missing).
type errorHints struct{ hint string }

func (h errorHints) plain(err error) error {
	err = plainError(err)
	var se *statusError
	// A server that answered nothing at all needs no TLS advice.
	if errors.As(err, &se) && se.s.Code() == codes.Unavailable && se.hint == "" &&
		!strings.Contains(se.s.Message(), "connection refused") && !strings.Contains(se.s.Message(), "no such host") {
		se.hint = h.hint
	}
	return err
}

func (h errorHints) unary(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn,
	invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	return h.plain(invoker(ctx, method, req, reply, cc, opts...))
}

func (h errorHints) stream(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string,
	streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	s, err := streamer(ctx, desc, cc, method, opts...)
	if err != nil {
		return nil, h.plain(err)
	}
	return plainStream{ClientStream: s, h: h}, nil
}

type plainStream struct {
	grpc.ClientStream
	h errorHints
}

func (s plainStream) SendMsg(m any) error { return s.h.plain(s.ClientStream.SendMsg(m)) }
func (s plainStream) RecvMsg(m any) error { return s.h.plain(s.ClientStream.RecvMsg(m)) }
func (s plainStream) CloseSend() error    { return s.h.plain(s.ClientStream.CloseSend()) }

// renameField makes an error about an API field name the command-line
// flag the user typed instead ("source_path: ..." becomes
// "--server-path: ...").
func renameField(err error, field, flag string) error {
	return fieldNames{field: flag}.rename(err, nil)
}

// fieldNames maps the API fields a server's error may start with
// ("header.name: ...") to what the user typed: a flag (--label), an
// argument of the usage line (NAME), or "$N", the N-th positional
// argument itself (the FILE given).
type fieldNames map[string]string

// rename rewrites a status error whose message starts with one of the
// fields, "field: ..." or "field[key]: ...", to start with the user's
// name for it; other errors pass unchanged.
func (m fieldNames) rename(err error, args []string) error {
	s, ok := status.FromError(err)
	if !ok || err == nil {
		return err
	}
	msg := s.Message()
	for field, user := range m {
		if n, ok := strings.CutPrefix(user, "$"); ok {
			i := int(n[0] - '0')
			if len(n) != 1 || i >= len(args) {
				continue
			}
			user = args[i]
		}
		if rest, ok := strings.CutPrefix(msg, field+": "); ok {
			return &statusError{s: status.New(s.Code(), user+": "+rest)}
		}
		if rest, ok := strings.CutPrefix(msg, field+"["); ok {
			if key, tail, ok := strings.Cut(rest, "]: "); ok {
				return &statusError{s: status.New(s.Code(), user+" "+key+": "+tail)}
			}
		}
	}
	return err
}

// usageError is a mistake on the command line, caught before any call.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usageErrorf(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// args checks the positional arguments and names the expected form on a
// mismatch, e.g. "expected NAME FILE (got 1 argument)".
func args(form string, n int) cobra.PositionalArgs {
	return func(_ *cobra.Command, a []string) error {
		if len(a) != n {
			return usageErrorf("expected %s (got %d argument%s); see --help", form, len(a), plural(len(a)))
		}
		return nil
	}
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

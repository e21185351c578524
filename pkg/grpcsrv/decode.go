package grpcsrv

import (
	"context"
	"sync"
	"sync/atomic"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// requestCheck makes a request that does not decode as its method's
// message an InvalidArgument, the caller's mistake: grpc itself answers
// Internal when the codec fails, before any interceptor runs. The
// server's codec remembers the failure instead of returning it, and the
// interceptors answer it.
type requestCheck struct {
	bad     sync.Map // the undecodable message -> its decode error
	pending atomic.Int64
}

// serverCodec is Codec with undecodable requests left to requestCheck.
type serverCodec struct {
	Codec
	rc *requestCheck
}

func (c serverCodec) Unmarshal(data mem.BufferSlice, v any) error {
	if err := c.Codec.Unmarshal(data, v); err != nil {
		c.rc.pending.Add(1)
		c.rc.bad.Store(v, err)
	}
	return nil
}

// take returns the decode error of m, if it had one, and forgets it.
func (rc *requestCheck) take(m any) error {
	if rc.pending.Load() == 0 {
		return nil
	}
	v, ok := rc.bad.LoadAndDelete(m)
	if !ok {
		return nil
	}
	rc.pending.Add(-1)
	name := "the method's request"
	if pm, ok := m.(proto.Message); ok {
		name = string(pm.ProtoReflect().Descriptor().FullName())
	}
	return status.Errorf(codes.InvalidArgument, "request: not a valid %s message: %v", name, v)
}

// unary answers an undecodable request, after the caller's token is
// checked (an unauthenticated caller learns nothing more).
func (rc *requestCheck) unary(check func(ctx context.Context, method string) error) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		if err := rc.take(req); err != nil {
			if aerr := check(ctx, info.FullMethod); aerr != nil {
				return nil, aerr
			}
			return nil, err
		}
		return h(ctx, req)
	}
}

// stream makes the handler's RecvMsg fail on an undecodable message.
func (rc *requestCheck) stream(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	return h(srv, checkedStream{ServerStream: ss, rc: rc})
}

type checkedStream struct {
	grpc.ServerStream
	rc *requestCheck
}

func (s checkedStream) RecvMsg(m any) error {
	if err := s.ServerStream.RecvMsg(m); err != nil {
		return err
	}
	return s.rc.take(m)
}

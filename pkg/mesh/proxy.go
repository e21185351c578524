package mesh

import (
	"context"
	"errors"
	"io"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/bmaas/bmaas/pkg/grpcsrv"
)

// proxiedKey marks a call the mesh forwarded once already: a process
// never forwards it again (a stale membership record cannot make two
// processes pass a call back and forth).
const proxiedKey = "bmaas-proxied"

var proxyDesc = &grpc.StreamDesc{ServerStreams: true, ClientStreams: true}

// Route names the service (a membership name such as "registry") that
// serves a gRPC method, and whether this process should forward it there:
// false for services it runs itself or does not know.
type Route func(fullMethod string) (service string, ok bool)

// Proxy is a handler for the calls a server has no service for (pass it
// to grpc.UnknownServiceHandler): it forwards each to a process that
// runs the service, found by membership, and relays the messages both
// ways as raw frames (unary and streaming alike), then the status,
// headers and trailers. The caller's metadata goes along, except its
// authorization: the forwarded call carries the mesh's own token (the
// server's interceptors have checked the caller's). The server must run
// grpcsrv's codec (grpcsrv.New does).
func (d *Dialer) Proxy(route Route) grpc.StreamHandler {
	return func(_ any, ss grpc.ServerStream) error {
		method, ok := grpc.MethodFromServerStream(ss)
		if !ok {
			return status.Error(codes.Internal, "proxy: no method in the stream")
		}
		service, ok := route(method)
		if !ok {
			return status.Errorf(codes.Unimplemented, "unknown method %s", method)
		}
		in, _ := metadata.FromIncomingContext(ss.Context())
		if len(in.Get(proxiedKey)) > 0 {
			return status.Errorf(codes.Unavailable, "no process runs %s (the call was forwarded once already)", service)
		}
		conn, err := d.Conn(service)
		if err != nil {
			return status.Errorf(codes.Unavailable, "%s: %v", service, err)
		}
		out := metadata.MD{}
		for k, v := range in {
			if k == "authorization" || k == "user-agent" || k == "content-type" || strings.HasPrefix(k, ":") || strings.HasPrefix(k, "grpc-") {
				continue
			}
			out[k] = v
		}
		out.Set(proxiedKey, "1")
		ctx, cancel := context.WithCancel(metadata.NewOutgoingContext(ss.Context(), out))
		defer cancel()
		cs, err := conn.NewStream(ctx, proxyDesc, method, grpc.ForceCodecV2(grpcsrv.NewCodec()), grpc.WaitForReady(false))
		if err != nil {
			return err
		}
		go forward(ss, cs, cancel)
		return backward(cs, ss)
	}
}

// forward relays the caller's messages to the service, then half-closes.
func forward(ss grpc.ServerStream, cs grpc.ClientStream, cancel context.CancelFunc) {
	for {
		f := new(grpcsrv.RawFrame)
		err := ss.RecvMsg(f)
		if errors.Is(err, io.EOF) {
			_ = cs.CloseSend()
			return
		}
		if err != nil { // the caller went away
			cancel()
			return
		}
		err = cs.SendMsg(f)
		f.Free()
		if err != nil { // backward gets the service's status
			return
		}
	}
}

// backward relays the service's headers, messages, trailers and status.
func backward(cs grpc.ClientStream, ss grpc.ServerStream) error {
	headers := false
	for {
		f := new(grpcsrv.RawFrame)
		err := cs.RecvMsg(f)
		if !headers {
			if h, herr := cs.Header(); herr == nil && len(h) > 0 {
				_ = ss.SendHeader(h)
			}
			headers = true
		}
		if err != nil {
			f.Free()
			ss.SetTrailer(cs.Trailer())
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		err = ss.SendMsg(f)
		f.Free()
		if err != nil {
			return err
		}
	}
}

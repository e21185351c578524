package mesh

import (
	"context"
	"errors"
	"io"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/bmaas/bmaas/pkg/grpcsrv"
	"github.com/bmaas/bmaas/pkg/iam"
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
			if k == "authorization" || k == iam.OnBehalfOfKey || k == iam.ClientAddressKey || k == "user-agent" || k == "content-type" || strings.HasPrefix(k, ":") || strings.HasPrefix(k, "grpc-") {
				continue
			}
			out[k] = v
		}
		out.Set(proxiedKey, "1")
		onBehalf(ss.Context(), out)
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

// onBehalf adds to md who the call is for: the caller the guard found
// in ctx (its Authorization value and address), which the serving
// process authenticates again, trusting it from the mesh only. The
// platform's own calls go as themselves.
func onBehalf(ctx context.Context, md metadata.MD) {
	c := iam.CallerFrom(ctx)
	if c == nil || c.Principal == iam.System || c.Authorization == "" {
		return
	}
	md.Set(iam.OnBehalfOfKey, c.Authorization)
	addr := c.Address
	if addr == "" {
		if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
			addr = p.Addr.String()
		}
	}
	if addr != "" {
		md.Set(iam.ClientAddressKey, addr)
	}
}

// OnBehalfUnary is the client interceptor of a connection the HTTP edge
// calls the services over with the mesh's token: each call carries the
// caller of the request it serves (onBehalf).
func OnBehalfUnary(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	return invoker(withOnBehalf(ctx), method, req, reply, cc, opts...)
}

// OnBehalfStream is OnBehalfUnary for streams.
func OnBehalfStream(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	return streamer(withOnBehalf(ctx), desc, cc, method, opts...)
}

func withOnBehalf(ctx context.Context) context.Context {
	c := iam.CallerFrom(ctx)
	if c == nil || c.Principal == iam.System || c.Authorization == "" {
		return ctx
	}
	md := metadata.MD{}
	onBehalf(ctx, md)
	pairs := make([]string, 0, 4)
	for k, v := range md {
		pairs = append(pairs, k, v[0])
	}
	return metadata.AppendToOutgoingContext(ctx, pairs...)
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

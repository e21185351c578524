package cli

import (
	"context"
	"errors"
	"net"
	"strings"

	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/bmaas/bmaas/pkg/mesh"
)

// dialFunc opens a raw connection to addr; tests plug in an in-memory one.
type dialFunc func(ctx context.Context, addr string) (net.Conn, error)

// client is an open connection to the registry with the per-command
// context rules applied.
type client struct {
	registryv1.RegistryServiceClient
	conn *grpc.ClientConn
	g    *globals
}

// connect opens a connection to the server named by --server. The
// connection is lazy: an unreachable server surfaces as Unavailable on the
// first call.
func (g *globals) connect() (*client, error) {
	if err := g.settle(); err != nil {
		return nil, err
	}
	target, secure := g.server, false
	for _, scheme := range []string{"https://", "grpcs://"} {
		if rest, ok := strings.CutPrefix(target, scheme); ok {
			target, secure = rest, true
		}
	}
	target = strings.TrimPrefix(strings.TrimPrefix(target, "http://"), "grpc://")
	if target == "" {
		return nil, usageErrorf("--server must not be empty")
	}
	creds, err := g.tls.credentials(secure)
	if err != nil {
		return nil, err
	}
	hints := errorHints{hint: g.tls.hint(secure)}
	opts := []grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		grpc.WithChainUnaryInterceptor(hints.unary),
		grpc.WithChainStreamInterceptor(hints.stream),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(16 << 20)),
	}
	if g.token != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(mesh.Bearer(g.token)))
	}
	if g.project != "" {
		opts = append(opts, grpc.WithChainUnaryInterceptor(projectHeader(g.project).unary),
			grpc.WithChainStreamInterceptor(projectHeader(g.project).stream))
	}
	if g.dial != nil {
		target = "passthrough:///" + target
		opts = append(opts, grpc.WithContextDialer(g.dial))
	}
	conn, err := grpc.NewClient(target, opts...)
	if err != nil {
		return nil, usageErrorf("--server %q: %v", g.server, err)
	}
	return &client{RegistryServiceClient: registryv1.NewRegistryServiceClient(conn), conn: conn, g: g}, nil
}

// projectHeaderKey is the gRPC metadata that names the caller's project
// (HTTP: Bmaas-Project); the server uses it for requests that name none.
const projectHeaderKey = "bmaas-project"

// projectHeader sends the project with every call.
type projectHeader string

func (p projectHeader) unary(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn,
	invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	return invoker(metadata.AppendToOutgoingContext(ctx, projectHeaderKey, string(p)), method, req, reply, cc, opts...)
}

func (p projectHeader) stream(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string,
	streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	return streamer(metadata.AppendToOutgoingContext(ctx, projectHeaderKey, string(p)), desc, cc, method, opts...)
}

// withClient runs fn with a connected client and closes it afterwards.
func (g *globals) withClient(cmd *cobra.Command, fn func(ctx context.Context, c *client) error) error {
	c, err := g.connect()
	if err != nil {
		return err
	}
	defer c.conn.Close()
	ctx := cmd.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	err = fn(ctx, c)
	if err != nil && errors.Is(ctx.Err(), context.Canceled) {
		return errInterrupted
	}
	return err
}

// errInterrupted replaces the error of a call cut short by Ctrl-C or SIGTERM.
var errInterrupted = errors.New("interrupted")

// call returns the context for one unary request: bounded by --timeout.
func (c *client) call(ctx context.Context) (context.Context, context.CancelFunc) {
	if ctx == nil {
		ctx = context.Background()
	}
	if c.g.timeout > 0 {
		return context.WithTimeout(ctx, c.g.timeout)
	}
	return context.WithCancel(ctx)
}

// transfer returns the context for a streamed upload or download: bounded
// only when --timeout was given on the command line, because a large
// artifact may legitimately take longer than the default.
func (c *client) transfer(ctx context.Context, cmd *cobra.Command) (context.Context, context.CancelFunc) {
	if ctx == nil {
		ctx = context.Background()
	}
	if f := cmd.Flags().Lookup("timeout"); f != nil && f.Changed && c.g.timeout > 0 {
		return context.WithTimeout(ctx, c.g.timeout)
	}
	return context.WithCancel(ctx)
}

// allPages follows a List call's page tokens: it calls list with each
// token in turn, under one call deadline per page, until the server
// returns no next token (or the same one again), and returns every item.
func allPages[T any](ctx context.Context, c *client, list func(ctx context.Context, token string) ([]T, string, error)) ([]T, error) {
	var all []T
	token := ""
	for {
		cctx, cancel := c.call(ctx)
		items, next, err := list(cctx, token)
		cancel()
		if err != nil {
			return nil, err
		}
		all = append(all, items...)
		if next == "" || next == token {
			return all, nil
		}
		token = next
	}
}

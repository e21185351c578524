package testenv

import (
	"context"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/bmaas/bmaas/pkg/grpcsrv"
)

// Serve runs a gRPC server on a free loopback port with the services that
// register adds (16 MiB messages, as bmaas serves by default), and returns
// a plaintext client connection to it; conn.Target() is the server's
// address. Both close when the test ends.
func Serve(t testing.TB, register func(*grpc.Server)) *grpc.ClientConn {
	t.Helper()
	srv, err := grpcsrv.New(grpcsrv.Config{Addr: "127.0.0.1:0", MaxRecvMsgBytes: 16 << 20}, grpcsrv.Deps{})
	if err != nil {
		t.Fatalf("grpc server: %v", err)
	}
	register(srv.GRPC())
	go func() { _ = srv.Serve() }()
	t.Cleanup(func() { srv.Shutdown(context.Background()) })
	conn, err := grpc.NewClient(srv.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("dial %s: %v", srv.Addr(), err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

//go:build integration

package tests

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
	"github.com/bmaas/bmaas/internal/app"
	"github.com/bmaas/bmaas/pkg/events"
	"github.com/bmaas/bmaas/pkg/membership"
	"github.com/bmaas/bmaas/tests/harness"
)

// TestServeAgainstExternalServers runs the services as two separate bmaas
// processes against etcd and NATS servers that run from their own
// binaries: etcd with TLS, client certificates and authentication, NATS
// with TLS and a user and password.
func TestServeAgainstExternalServers(t *testing.T) {
	t.Parallel()
	etcd, es := harness.ExternalEtcdSecure(t)
	natsSrv, ns := harness.ExternalNATSSecure(t)
	common := []string{"--etcd-endpoints", etcd.URL, "--etcd-ca", es.CA, "--etcd-cert", es.Cert, "--etcd-key", es.Key,
		"--etcd-username", es.User, "--etcd-password-file", es.PasswordFile,
		"--nats-url", natsSrv.URL, "--nats-user", ns.User, "--nats-password-file", ns.PasswordFile, "--nats-ca", ns.CA}

	reg := harness.StartProcess(t, append([]string{"serve", "--target=registry", "--data-dir", t.TempDir(), "--node-name", "reg"}, common...)...)
	rest := harness.StartProcess(t, append([]string{"serve", "--target=scheduler,trainer-agent,evaluator,gateway", "--data-dir", t.TempDir(), "--node-name", "rest"}, common...)...)
	ctx := t.Context()

	c := dialRegistry(t, reg.GRPC)
	_, err := c.CreateModel(ctx, &registryv1.CreateModelRequest{Model: &registryv1.Model{Name: "ext"}})
	require.NoError(t, err)
	v, digest, err := streamUpload(ctx, c, "ext", 2<<20, 4, nil)
	require.NoError(t, err)
	require.Equal(t, digest, downloadDigest(t, c, "ext", "1"))
	require.Equal(t, int64(1), v.Version)

	conn, err := grpc.NewClient(rest.GRPC, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer conn.Close()
	for _, svc := range fiveServices[1:] {
		resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: svc})
		require.NoError(t, err)
		require.Equal(t, healthpb.HealthCheckResponse_SERVING, resp.Status, svc)
	}

	// Both processes announced their services in the external etcd.
	ea := app.EtcdAuth{Username: es.User, PasswordFile: es.PasswordFile, CA: es.CA, Cert: es.Cert, Key: es.Key}
	cli, err := ea.Client(ctx, []string{etcd.URL})
	require.NoError(t, err)
	defer cli.Close()
	for _, svc := range []string{"registry", "scheduler", "gateway"} {
		ms, err := membership.List(ctx, cli, svc)
		require.NoError(t, err)
		require.Len(t, ms, 1, svc)
	}

	// The registry's events went to the external NATS.
	na := app.NATSAuth{User: ns.User, PasswordFile: ns.PasswordFile, CA: ns.CA}
	nopts, err := na.Options()
	require.NoError(t, err)
	nc, err := nats.Connect(natsSrv.URL, nopts...)
	require.NoError(t, err)
	defer nc.Close()
	bus, err := events.NewBus(ctx, nc, events.Config{}, nil)
	require.NoError(t, err)
	var types []string
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	err = bus.Replay(rctx, events.StreamEvents, "bmaas.model.ext.>", true, func(e events.Event) error {
		types = append(types, e.Type)
		if e.Type == "version.ready" {
			return errDone
		}
		return nil
	})
	require.ErrorIs(t, err, errDone)
	require.Equal(t, []string{"created", "version.ready"}, types)
}

var errDone = errors.New("done")

//go:build integration

package tests

import (
	"crypto/tls"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"

	gatewayv1 "github.com/bmaas/bmaas/api/bmaas/gateway/v1"
	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
	"github.com/bmaas/bmaas/api/inference"
	"github.com/bmaas/bmaas/internal/app"
	"github.com/bmaas/bmaas/pkg/lane"
	"github.com/bmaas/bmaas/pkg/mesh"
	"github.com/bmaas/bmaas/pkg/pki"
	"github.com/bmaas/bmaas/services/traineragent/endpointkeys"
	"github.com/bmaas/bmaas/tests/harness"
)

// TestTLSEverywhere: under bmaas up --tls every listener speaks TLS with
// the development PKI. A user with its CA and client certificate works
// (gRPC, the CLI, the SDK, curl, grpcurl); without the certificate the
// gRPC port refuses; serving runs over TLS to the replicas, whose ports
// take the gateway's certificate and refuse a user's; a new server
// certificate is taken without a restart.
func TestTLSEverywhere(t *testing.T) {
	t.Parallel()
	c := harness.Start(t, harness.WithTLS(), withFastGateway())
	ctx := t.Context()
	f := app.DevTLS(c.Config.DataDir)
	require.True(t, strings.HasPrefix(c.HTTP, "https://"))

	// gRPC: the user's certificate opens the port; TLS without one, or
	// plain TCP, does not.
	_, err := c.Registry.CreateModel(ctx, &registryv1.CreateModelRequest{Model: &registryv1.Model{Name: "tls"}})
	require.NoError(t, err)
	for name, creds := range map[string]credentials.TransportCredentials{
		"no client certificate": credentials.NewTLS(&tls.Config{RootCAs: c.TLS.RootCAs}),
		"plain":                 insecure.NewCredentials(),
	} {
		conn, err := grpc.NewClient(c.Addrs.GRPC, grpc.WithTransportCredentials(creds))
		require.NoError(t, err)
		_, err = registryv1.NewRegistryServiceClient(conn).ListModels(ctx, &registryv1.ListModelsRequest{})
		require.Error(t, err, name)
		_ = conn.Close()
	}

	// Serving over TLS: the gateway reaches the replica through its lane
	// and its gRPC port, both TLS.
	servedIris(t, c)
	row := []float64{5.1, 3.5, 1.4, 0.2}
	code, body := httpDo(t, c, "POST", "/v2/models/iris/infer", map[string]any{"inputs": []any{map[string]any{
		"name": "input", "datatype": "FP64", "shape": []int{1, 4}, "data": row}}})
	require.Equal(t, http.StatusOK, code, string(body))

	// The replica's ports: the gateway's (a bmaas process's) certificate
	// gets in, a user's does not, even with the replica's token.
	kvs, err := c.EtcdClient(t).Get(ctx, endpointkeys.Of("iris"), clientv3.WithPrefix())
	require.NoError(t, err)
	require.NotEmpty(t, kvs.Kvs)
	ep := &gatewayv1.Endpoint{}
	require.NoError(t, proto.Unmarshal(kvs.Kvs[0].Value, ep))
	node, err := tls.LoadX509KeyPair(f.ServerCert, f.ServerKey)
	require.NoError(t, err)
	req := &inference.ModelInferRequest{ModelName: "iris", Inputs: []*inference.ModelInferRequest_InferInputTensor{{
		Name: "input", Datatype: "FP64", Shape: []int64{1, 4}, Contents: &inference.InferTensorContents{Fp64Contents: row}}}}
	wire, err := proto.Marshal(req)
	require.NoError(t, err)
	for name, cert := range map[string]tls.Certificate{"user": c.TLS.Certificates[0], "gateway": node} {
		cfg := &tls.Config{RootCAs: c.TLS.RootCAs, Certificates: []tls.Certificate{cert}}
		conn, err := grpc.NewClient(ep.Address, grpc.WithTransportCredentials(credentials.NewTLS(cfg)),
			grpc.WithPerRPCCredentials(mesh.Bearer(ep.Token)))
		require.NoError(t, err)
		_, gerr := inference.NewGRPCInferenceServiceClient(conn).ModelInfer(ctx, req)
		_ = conn.Close()
		lc := lane.NewClient(ep.LaneAddress, ep.Token)
		lc.TLS = cfg
		resp, lerr := lc.Call(ctx, lane.MethodModelInfer, wire)
		_ = lc.Close()
		if name == "user" {
			require.Error(t, gerr, "the replica's gRPC port took a user's certificate")
			require.Error(t, lerr, "the replica's lane took a user's certificate")
			continue
		}
		require.NoError(t, gerr)
		require.NoError(t, lerr)
		resp.Free()
	}

	// curl with the CA; without it, it does not trust the server.
	if curl, err := exec.LookPath("curl"); err == nil {
		out, err := exec.CommandContext(ctx, curl, "-sS", "--cacert", f.CA, c.HTTP+"/v1/models").CombinedOutput()
		require.NoError(t, err, "%s", out)
		require.Contains(t, string(out), `"tls"`)
		out, err = exec.CommandContext(ctx, curl, "-sS", c.HTTP+"/readyz").CombinedOutput()
		require.Error(t, err, "curl trusted the development CA without --cacert: %s", out)
	}

	// The CLI, with the environment bmaas up --tls prints.
	bin := harness.Binary(t)
	cli := func(env ...string) (string, error) {
		cmd := exec.CommandContext(ctx, bin, "--server", c.Addrs.GRPC, "model", "list")
		cmd.Env = append(os.Environ(), env...)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	out, err := cli("BMAAS_TLS_CA="+f.CA, "BMAAS_TLS_CERT="+f.ClientCert, "BMAAS_TLS_KEY="+f.ClientKey)
	require.NoError(t, err, out)
	require.Contains(t, out, "tls")
	out, err = cli("BMAAS_TLS_CA=" + f.CA)
	require.Error(t, err, "the CLI got in without a client certificate: %s", out)
	require.Contains(t, out, "--tls-cert")

	// The Python SDK.
	py := exec.CommandContext(ctx, python, "-c", `import bmaas, sys
print([m["name"] for m in bmaas.Client(sys.argv[1], ca_file=sys.argv[2]).list_models()])`, c.HTTP, f.CA)
	py.Dir = filepath.Join("..", "sdk", "python")
	out2, err := py.CombinedOutput()
	require.NoError(t, err, "%s", out2)
	require.Contains(t, string(out2), "'tls'")

	// grpcurl, where it is installed (.ci/run installs it).
	if grpcurl, err := exec.LookPath("grpcurl"); err == nil {
		out, err := exec.CommandContext(ctx, grpcurl, "-cacert", f.CA, "-cert", f.ClientCert, "-key", f.ClientKey,
			c.Addrs.GRPC, "list").CombinedOutput()
		require.NoError(t, err, "%s", out)
		require.Contains(t, string(out), "bmaas.registry.v1.RegistryService")
		out, err = exec.CommandContext(ctx, grpcurl, "-cacert", f.CA, c.Addrs.GRPC, "list").CombinedOutput()
		require.Error(t, err, "grpcurl got in without a client certificate: %s", out)
	} else if os.Getenv("CI") != "" {
		t.Fatal("grpcurl not found; .ci/run installs it")
	}

	// A new server certificate in the files is served without a restart.
	ca, err := pki.LoadCA(f.CA, f.CAKey)
	require.NoError(t, err)
	leaf, err := ca.Issue(pki.Leaf{CommonName: "renewed", Hosts: []string{"127.0.0.1", "localhost"},
		URIs: []string{pki.NodeURI("renewed")}, Server: true, Client: true, TTL: time.Hour})
	require.NoError(t, err)
	require.NoError(t, pki.WriteFile(f.ServerKey, leaf.KeyPEM, 0o600))
	require.NoError(t, pki.WriteFile(f.ServerCert, leaf.CertPEM, 0o644))
	served := func(addr string) string {
		conn, err := tls.Dial("tcp", addr, c.TLS)
		if err != nil {
			return err.Error()
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].Subject.CommonName
	}
	eventually(t, 20*time.Second, "the renewed certificate is served", func() bool {
		return served(c.Addrs.GRPC) == "renewed" && served(c.Addrs.HTTP) == "renewed"
	})
	_, err = c.Registry.ListModels(ctx, &registryv1.ListModelsRequest{})
	require.NoError(t, err, "calls go on after the renewal")
}

//go:build integration

package tests

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	gatewayv1 "github.com/bmaas/bmaas/api/bmaas/gateway/v1"
	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
	schedulerv1 "github.com/bmaas/bmaas/api/bmaas/scheduler/v1"
	"github.com/bmaas/bmaas/internal/cli"
	"github.com/bmaas/bmaas/tests/harness"
)

// torchServer is a process server as a runtime declares it.
func torchServer() *schedulerv1.ProcessServer {
	return &schedulerv1.ProcessServer{Command: "python3", Args: []string{"serve.py", "--port={{.HTTPPort}}", "--threads={{.Params.threads}}"},
		Protocols: []string{"v2-rest"}, ReadinessProbe: &schedulerv1.ReadinessProbe{HttpPath: "/v2/health/ready"}}
}

// uploadVersion registers a small artifact of format as a new version.
func uploadVersion(t *testing.T, c *harness.Cluster, model string, format registryv1.ModelFormat, data []byte) int64 {
	t.Helper()
	_, err := c.Registry.CreateModel(t.Context(), &registryv1.CreateModelRequest{Model: &registryv1.Model{Name: model}})
	if status.Code(err) != codes.AlreadyExists {
		require.NoError(t, err)
	}
	sum := sha256.Sum256(data)
	stream, err := c.Registry.CreateModelVersion(t.Context())
	require.NoError(t, err)
	require.NoError(t, stream.Send(&registryv1.CreateModelVersionRequest{Payload: &registryv1.CreateModelVersionRequest_Header{
		Header: &registryv1.CreateModelVersionHeader{Model: model, Sha256: hex.EncodeToString(sum[:]), SizeBytes: int64(len(data)),
			Spec: &registryv1.ModelVersionSpec{Format: format}}}}))
	require.NoError(t, stream.Send(&registryv1.CreateModelVersionRequest{Payload: &registryv1.CreateModelVersionRequest_Chunk{Chunk: data}}))
	resp, err := stream.CloseAndRecv()
	require.NoError(t, err)
	return resp.GetVersion().GetVersion()
}

// runCLI runs bmaas against the cluster and returns its standard output.
func runCLI(t *testing.T, c *harness.Cluster, args ...string) (string, error) {
	t.Helper()
	root := cli.Root()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&bytes.Buffer{})
	root.SetArgs(append([]string{"--server", c.Addrs.GRPC}, args...))
	err := root.ExecuteContext(t.Context())
	return out.String(), err
}

// requireField checks err is an InvalidArgument (or the code given) whose
// message starts with field.
func requireField(t *testing.T, err error, code codes.Code, field string) {
	t.Helper()
	require.Equal(t, code, status.Code(err), "%v", err)
	require.True(t, strings.HasPrefix(status.Convert(err).Message(), field+": "), "want %s: got %v", field, err)
}

// TestRuntimesOverGRPCRESTAndCLI: runtimes are created, listed, read and
// deleted over each API; each bad input names its field and writes
// nothing; a deployment of a pytorch version picks the runtime by format
// and its replica job carries the server; the runtime cannot be deleted
// while the deployment uses it.
func TestRuntimesOverGRPCRESTAndCLI(t *testing.T) {
	t.Parallel()
	c := harness.Start(t, withFastGateway())
	ctx := t.Context()
	rts := gatewayv1.NewRuntimeServiceClient(c.Conn)
	deps := gatewayv1.NewDeploymentServiceClient(c.Conn)
	sch := schedulerv1.NewSchedulerServiceClient(c.Conn)

	// gRPC.
	created, err := rts.CreateRuntime(ctx, &gatewayv1.CreateRuntimeRequest{Runtime: &gatewayv1.Runtime{Name: "torch-v2",
		Formats: []*gatewayv1.RuntimeFormat{{Name: "pytorch", Priority: 10}}, Server: torchServer(),
		Resources: &schedulerv1.Resources{CpuMillis: 500, MemoryBytes: 1 << 30}, TerminationGraceSeconds: 20}})
	require.NoError(t, err)
	require.NotEmpty(t, created.GetRuntime().GetEtag())
	_, err = rts.CreateRuntime(ctx, &gatewayv1.CreateRuntimeRequest{Runtime: created.GetRuntime()})
	require.Equal(t, codes.AlreadyExists, status.Code(err))

	// REST.
	code, body := httpDo(t, c, http.MethodPost, "/v1/runtimes", map[string]any{"name": "other-v2",
		"formats": []any{map[string]any{"name": "other"}}, "server": map[string]any{"command": "/usr/bin/env",
			"args": []string{"serve"}, "protocols": []string{"v2-rest", "openai"}, "readiness_probe": map[string]any{"http_path": "/health"}}})
	require.Equal(t, http.StatusOK, code, "%s", body)
	code, body = httpDo(t, c, http.MethodGet, "/v1/runtimes/other-v2", nil)
	require.Equal(t, http.StatusOK, code, "%s", body)
	require.Contains(t, string(body), `"openai"`)
	code, body = httpDo(t, c, http.MethodPost, "/v1/runtimes", map[string]any{"name": "rest-bad",
		"formats": []any{map[string]any{"name": "other"}}, "server": map[string]any{"command": ""}})
	require.Equal(t, http.StatusBadRequest, code, "%s", body)
	require.Contains(t, string(body), "runtime.server.command")

	// CLI.
	out, err := runCLI(t, c, "runtime", "create", "cli-v2", "--format", "onnx:-1", "--command", "python3", "--arg", "serve.py",
		"--protocol", "v2-grpc", "--probe-grpc", "--grace", "5s")
	require.NoError(t, err)
	require.Contains(t, out, "onnx:-1")
	out, err = runCLI(t, c, "-o", "json", "runtime", "list")
	require.NoError(t, err)
	var list struct {
		Runtimes []struct {
			Name    string `json:"name"`
			Builtin bool   `json:"builtin"`
		} `json:"runtimes"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &list), out)
	var names []string
	for _, r := range list.Runtimes {
		names = append(names, r.Name)
	}
	require.Equal(t, []string{"native", "onnx", "cli-v2", "other-v2", "torch-v2"}, names, "built-ins first, then by name")
	require.True(t, list.Runtimes[0].Builtin)
	out, err = runCLI(t, c, "runtime", "get", "torch-v2")
	require.NoError(t, err)
	require.Contains(t, out, "python3 serve.py --port={{.HTTPPort}}")
	_, err = runCLI(t, c, "runtime", "create", "cli-bad", "--format", "pytorch", "--command", "p", "--protocol", "v2-rest")
	require.ErrorContains(t, err, "--probe-http or --probe-grpc")
	_, err = runCLI(t, c, "runtime", "delete", "cli-v2")
	require.NoError(t, err)
	_, err = rts.GetRuntime(ctx, &gatewayv1.GetRuntimeRequest{Name: "cli-v2"})
	require.Equal(t, codes.NotFound, status.Code(err))
	_, err = rts.DeleteRuntime(ctx, &gatewayv1.DeleteRuntimeRequest{Name: "onnx"})
	require.Equal(t, codes.FailedPrecondition, status.Code(err), "built-ins stay")

	// Bad runtimes: each names its field, none is written.
	for _, bad := range []struct {
		field string
		edit  func(*gatewayv1.Runtime)
	}{
		{"runtime.server.command", func(r *gatewayv1.Runtime) { r.Server.Command = "" }},
		{"runtime.server.args[1]", func(r *gatewayv1.Runtime) { r.Server.Args[1] = "--port={{.HTTPPort" }},
		{"runtime.server.protocols[0]", func(r *gatewayv1.Runtime) { r.Server.Protocols = []string{"http"} }},
		{"runtime.server.readiness_probe", func(r *gatewayv1.Runtime) { r.Server.ReadinessProbe = &schedulerv1.ReadinessProbe{} }},
		{"runtime.server.readiness_probe.http_path", func(r *gatewayv1.Runtime) { r.Server.Protocols = []string{"v2-grpc"} }},
		{"runtime.formats[1].name", func(r *gatewayv1.Runtime) { r.Formats = append(r.Formats, &gatewayv1.RuntimeFormat{Name: "tf"}) }},
		{"runtime.name", func(r *gatewayv1.Runtime) { r.Name = "native" }},
		{"runtime.server.code_bundle_sha256", func(r *gatewayv1.Runtime) { r.Server.CodeBundleSha256 = strings.Repeat("0", 64) }},
	} {
		r := &gatewayv1.Runtime{Name: "bad-rt", Formats: []*gatewayv1.RuntimeFormat{{Name: "pytorch"}}, Server: torchServer()}
		bad.edit(r)
		_, err := rts.CreateRuntime(ctx, &gatewayv1.CreateRuntimeRequest{Runtime: r})
		requireField(t, err, codes.InvalidArgument, bad.field)
		_, err = rts.GetRuntime(ctx, &gatewayv1.GetRuntimeRequest{Name: "bad-rt"})
		require.Equal(t, codes.NotFound, status.Code(err), "%s: nothing written", bad.field)
	}

	// Deployments: a pytorch and an onnx version.
	pt := uploadVersion(t, c, "bc", registryv1.ModelFormat_MODEL_FORMAT_PYTORCH, []byte("torchscript, say"))
	ox := uploadVersion(t, c, "bc", registryv1.ModelFormat_MODEL_FORMAT_ONNX, []byte("onnx, say"))
	for _, bad := range []struct {
		d     *gatewayv1.Deployment
		code  codes.Code
		field string
	}{
		{&gatewayv1.Deployment{Name: "bad-dep", Model: refOf("bc", pt), Runtime: "nope"}, codes.NotFound, "deployment.runtime"},
		{&gatewayv1.Deployment{Name: "bad-dep", Model: refOf("bc", pt), Runtime: "other-v2"}, codes.InvalidArgument, "deployment.runtime"},
		{&gatewayv1.Deployment{Name: "bad-dep", Model: refOf("bc", ox), Runtime: "torch-v2"}, codes.InvalidArgument, "deployment.runtime"},
	} {
		_, err := deps.CreateDeployment(ctx, &gatewayv1.CreateDeploymentRequest{Deployment: bad.d})
		requireField(t, err, bad.code, bad.field)
		_, err = deps.GetDeployment(ctx, &gatewayv1.GetDeploymentRequest{Name: "bad-dep"})
		require.Equal(t, codes.NotFound, status.Code(err), "nothing written")
	}
	_, err = deps.CreateDeployment(ctx, &gatewayv1.CreateDeploymentRequest{Deployment: &gatewayv1.Deployment{
		Name: "bad-dep", Model: refOf("bc", ox), Runtime: "torch-v2"}})
	require.Contains(t, status.Convert(err).Message(), `runtime "torch-v2" serves pytorch, not onnx (version 2 of bc is onnx)`)

	// The pytorch version picks torch-v2 by format; its job carries the server.
	dep, err := deps.CreateDeployment(ctx, &gatewayv1.CreateDeploymentRequest{Deployment: &gatewayv1.Deployment{
		Name: "bc", Model: refOf("bc", pt), MinReplicas: 1, Parameters: map[string]string{"threads": "2"},
		Resources: &schedulerv1.Resources{CpuMillis: 250}}})
	require.NoError(t, err)
	require.Equal(t, "torch-v2", dep.GetDeployment().GetStatus().GetRuntime())
	var job *schedulerv1.Job
	eventually(t, 30*time.Second, "the replica job", func() bool {
		resp, err := sch.ListJobs(ctx, &schedulerv1.ListJobsRequest{LabelSelector: "deployment=bc"})
		require.NoError(t, err)
		if len(resp.GetJobs()) == 0 {
			return false
		}
		got, err := sch.GetJob(ctx, &schedulerv1.GetJobRequest{Id: resp.GetJobs()[0].GetId()})
		require.NoError(t, err)
		job = got.GetJob()
		return true
	})
	sr := job.GetSpec().GetServing()
	require.Equal(t, "torch-v2", sr.GetRuntime())
	require.True(t, proto.Equal(torchServer(), sr.GetServer()), "the job carries the runtime's server: %v", sr.GetServer())
	require.Equal(t, map[string]string{"threads": "2"}, sr.GetParameters())
	require.Equal(t, int64(250), job.GetSpec().GetResources().GetCpuMillis(), "the deployment's resources first")
	require.Equal(t, int64(1<<30), job.GetSpec().GetResources().GetMemoryBytes(), "then the runtime's")
	require.Equal(t, int32(20), job.GetSpec().GetTerminationGraceSeconds())

	_, err = rts.DeleteRuntime(ctx, &gatewayv1.DeleteRuntimeRequest{Name: "torch-v2"})
	require.Equal(t, codes.FailedPrecondition, status.Code(err))
	require.Contains(t, status.Convert(err).Message(), "bc")
	eventually(t, 30*time.Second, "deploy get shows the runtime and the replica's restarts", func() bool {
		out, err = runCLI(t, c, "deploy", "get", "bc")
		require.NoError(t, err)
		require.Contains(t, out, "torch-v2 (picked for the version's format)")
		return strings.Contains(out, "RESTARTS")
	})

	// An alias moved to a version of another format picks again.
	setAlias(t, c, "bc", "prod", refNum(pt))
	_, err = deps.CreateDeployment(ctx, &gatewayv1.CreateDeploymentRequest{Deployment: &gatewayv1.Deployment{
		Name: "bc-prod", Model: "bc@prod", MinReplicas: 0}})
	require.NoError(t, err)
	setAlias(t, c, "bc", "prod", refNum(ox))
	eventually(t, 30*time.Second, "the onnx runtime after the alias moves", func() bool {
		d, err := deps.GetDeployment(ctx, &gatewayv1.GetDeploymentRequest{Name: "bc-prod"})
		require.NoError(t, err)
		return d.GetDeployment().GetStatus().GetRuntime() == "onnx"
	})

	// Deleted once no deployment uses it.
	_, err = deps.DeleteDeployment(ctx, &gatewayv1.DeleteDeploymentRequest{Name: "bc"})
	require.NoError(t, err)
	_, err = rts.DeleteRuntime(ctx, &gatewayv1.DeleteRuntimeRequest{Name: "torch-v2"})
	require.NoError(t, err)
}

func refNum(v int64) string { return strconv.FormatInt(v, 10) }

func refOf(model string, v int64) string { return model + "@" + refNum(v) }

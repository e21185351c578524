package cli

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/test/bufconn"

	gatewayv1 "github.com/bmaas/bmaas/api/bmaas/gateway/v1"
	"github.com/bmaas/bmaas/pkg/apierr"
	"github.com/bmaas/bmaas/pkg/runtimes"
)

// fakeRuntimes records the runtime created and the deployment created;
// it refuses an empty command as the gateway does.
type fakeRuntimes struct {
	gatewayv1.UnimplementedRuntimeServiceServer
	gatewayv1.UnimplementedDeploymentServiceServer
	mu      sync.Mutex
	created *gatewayv1.Runtime
	deploy  *gatewayv1.Deployment
}

func (f *fakeRuntimes) start(t *testing.T) *globals {
	lis := bufconn.Listen(1 << 20)
	srv := grpc.NewServer()
	gatewayv1.RegisterRuntimeServiceServer(srv, f)
	gatewayv1.RegisterDeploymentServiceServer(srv, f)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return &globals{dial: func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }}
}

func (f *fakeRuntimes) CreateRuntime(_ context.Context, r *gatewayv1.CreateRuntimeRequest) (*gatewayv1.CreateRuntimeResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.created = r.GetRuntime()
	if r.GetRuntime().GetServer().GetCommand() == " " {
		return nil, apierr.ToStatus(apierr.Invalid("runtime.server.command", "required"))
	}
	for i, f := range r.GetRuntime().GetFormats() {
		if f.GetName() == "tf" {
			return nil, apierr.ToStatus(apierr.Invalid(fmt.Sprintf("runtime.formats[%d].name", i), "unknown format %q", f.GetName()))
		}
	}
	return &gatewayv1.CreateRuntimeResponse{Runtime: r.GetRuntime()}, nil
}

func (f *fakeRuntimes) CreateDeployment(_ context.Context, r *gatewayv1.CreateDeploymentRequest) (*gatewayv1.CreateDeploymentResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.deploy = r.GetDeployment()
	return &gatewayv1.CreateDeploymentResponse{Deployment: r.GetDeployment()}, nil
}

func TestRuntimeCreateFromFlags(t *testing.T) {
	t.Parallel()
	f := &fakeRuntimes{}
	g := f.start(t)
	out, _, err := run(t, g, "runtime", "create", "torch-v2", "--format", "pytorch:10", "--format", "onnx",
		"--command", "python3", "--arg", "serve.py", "--arg", "--port={{.HTTPPort}}", "--env", "OMP_NUM_THREADS={{.Params.threads}}",
		"--protocol", "v2-rest", "--probe-http", "/v2/health/ready", "--probe-initial-delay", "2s", "--startup-timeout", "10m",
		"--workdir", "/srv/torch", "--cpu", "2", "--memory", "2Gi", "--gpus", "1", "--gpu-memory", "10Gi", "--grace", "30s")
	require.NoError(t, err)
	require.Contains(t, out, "pytorch:10, onnx:0")
	r := f.created
	require.Equal(t, "torch-v2", r.Name)
	require.Len(t, r.Formats, 2)
	require.Equal(t, int32(10), r.Formats[0].Priority)
	require.Equal(t, "onnx", r.Formats[1].Name)
	s := r.Server
	require.Equal(t, "python3", s.Command)
	require.Equal(t, []string{"serve.py", "--port={{.HTTPPort}}"}, s.Args)
	require.Equal(t, map[string]string{"OMP_NUM_THREADS": "{{.Params.threads}}"}, s.Env)
	require.Equal(t, []string{"v2-rest"}, s.Protocols)
	require.Equal(t, "/srv/torch", s.Workdir)
	require.Equal(t, "/v2/health/ready", s.ReadinessProbe.HttpPath)
	require.Equal(t, 2*time.Second, s.ReadinessProbe.InitialDelay.AsDuration())
	require.Equal(t, 10*time.Minute, s.ReadinessProbe.StartupTimeout.AsDuration())
	require.Nil(t, s.ReadinessProbe.Timeout, "a probe duration not given is the server's default")
	require.Equal(t, int64(2000), r.Resources.CpuMillis)
	require.Equal(t, int64(2<<30), r.Resources.MemoryBytes)
	require.Equal(t, int32(1), r.Resources.Gpus)
	require.Equal(t, int64(10<<30), r.Resources.GpuMemoryBytes)
	require.Equal(t, int32(30), r.TerminationGraceSeconds)
}

func TestRuntimeCreateNamesTheFlag(t *testing.T) {
	t.Parallel()
	f := &fakeRuntimes{}
	g := f.start(t)
	_, _, err := run(t, g, "runtime", "create", "x", "--format", "pytorch", "--command", " ", "--protocol", "v2-rest")
	require.ErrorContains(t, err, "--command: required")
	_, _, err = run(t, g, "runtime", "create", "x", "--format", "pytorch", "--format", "tf:2", "--command", "p", "--protocol", "v2-rest")
	require.ErrorContains(t, err, `--format tf:2: unknown format "tf"`)

	for _, bad := range [][]string{
		{"runtime", "create", "x", "--format", "pytorch"},
		{"runtime", "create", "x", "--command", "p"},
		{"runtime", "create", "x", "--command", "p", "--format", "pytorch:high"},
		{"runtime", "create", "x", "--command", "p", "--format", "pytorch", "--probe-http", "/r", "--probe-grpc"},
		{"runtime", "create", "x", "--command", "p", "--format", "pytorch", "--code", ".", "--workdir", "/srv"},
		{"runtime", "create", "-f", "runtime.json", "--command", "p"},
		{"runtime", "create", "--command", "p"},
	} {
		_, _, err := run(t, g, bad...)
		var ue *usageError
		require.ErrorAs(t, err, &ue, "%v", bad)
	}
}

// TestRuntimeCreateFromFile reads the same runtime as protojson (proto
// or JSON names) and as YAML; a NAME argument overrides the file's.
func TestRuntimeCreateFromFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	js := filepath.Join(dir, "runtime.json")
	require.NoError(t, os.WriteFile(js, []byte(`{"name": "torch-v2", "formats": [{"name": "pytorch", "priority": 10}],
  "server": {"command": "python3", "args": ["serve.py", "--port={{.HTTPPort}}"], "protocols": ["v2-rest"],
    "readinessProbe": {"http_path": "/v2/health/ready", "startup_timeout": "300s"}},
  "resources": {"memory_bytes": "2147483648"}, "termination_grace_seconds": 30}`), 0o644))
	yml := filepath.Join(dir, "runtime.yaml")
	require.NoError(t, os.WriteFile(yml, []byte(`name: torch-v2
formats: [{name: pytorch, priority: 10}]
server:
  command: python3
  args: [serve.py, "--port={{.HTTPPort}}"]
  protocols: [v2-rest]
  readiness_probe: {http_path: /v2/health/ready, startup_timeout: 300s}
resources: {memory_bytes: 2147483648}
termination_grace_seconds: 30
`), 0o644))
	for _, path := range []string{js, yml} {
		r, err := readRuntimeFile(path)
		require.NoError(t, err, path)
		require.Equal(t, "torch-v2", r.Name)
		require.Equal(t, int32(10), r.Formats[0].Priority)
		require.Equal(t, "/v2/health/ready", r.Server.ReadinessProbe.HttpPath)
		require.Equal(t, 5*time.Minute, r.Server.ReadinessProbe.StartupTimeout.AsDuration())
		require.Equal(t, int64(2<<30), r.Resources.MemoryBytes)
		require.Equal(t, int32(30), r.TerminationGraceSeconds)
	}

	f := &fakeRuntimes{}
	g := f.start(t)
	_, _, err := run(t, g, "runtime", "create", "other-name", "-f", yml)
	require.NoError(t, err)
	require.Equal(t, "other-name", f.created.Name)

	bad := filepath.Join(dir, "bad.json")
	require.NoError(t, os.WriteFile(bad, []byte(`{"name": "x", "formatz": []}`), 0o644))
	_, err = readRuntimeFile(bad)
	require.ErrorContains(t, err, "formatz")
}

func TestDeployCreateRuntimeFlags(t *testing.T) {
	t.Parallel()
	f := &fakeRuntimes{}
	g := f.start(t)
	out, _, err := run(t, g, "deploy", "create", "--model", "bc@3", "--runtime", "torch-v2", "--param", "threads=2",
		"--param", "dtype=float16", "--gpus", "1", "--gpu-memory", "10Gi")
	require.NoError(t, err)
	d := f.deploy
	require.Equal(t, "torch-v2", d.Runtime)
	require.Equal(t, map[string]string{"threads": "2", "dtype": "float16"}, d.Parameters)
	require.Equal(t, int32(1), d.Resources.Gpus)
	require.Equal(t, int64(10<<30), d.Resources.GpuMemoryBytes)
	require.Contains(t, out, "torch-v2")
	require.Contains(t, out, "dtype=float16 threads=2")

	_, _, err = run(t, g, "deploy", "create", "--model", "bc@3", "--param", "threads")
	var ue *usageError
	require.ErrorAs(t, err, &ue)
}

func TestRuntimeStringSaysHowItWasChosen(t *testing.T) {
	t.Parallel()
	require.Equal(t, "torch-v2", runtimeString(&gatewayv1.Deployment{Runtime: "torch-v2",
		Status: &gatewayv1.DeploymentStatus{Runtime: "torch-v2"}}))
	require.Equal(t, "onnx (picked for the version's format)", runtimeString(&gatewayv1.Deployment{
		Status: &gatewayv1.DeploymentStatus{Runtime: "onnx"}}))
	require.Equal(t, "-", runtimeString(&gatewayv1.Deployment{}))
}

// TestExampleRuntimesLoad: every examples/runtimes/*/runtime.{json,yaml}
// reads as `runtime create -f` reads it, and its server passes the
// gateway's checks.
func TestExampleRuntimesLoad(t *testing.T) {
	t.Parallel()
	var files []string
	for _, pat := range []string{"*.json", "*.yaml", "*.yml"} {
		m, err := filepath.Glob(filepath.Join("..", "..", "examples", "runtimes", "*", "runtime"+strings.TrimPrefix(pat, "*")))
		require.NoError(t, err)
		files = append(files, m...)
	}
	for _, f := range files {
		r, err := readRuntimeFile(f)
		require.NoError(t, err, f)
		require.NotEmpty(t, r.GetFormats(), f)
		require.NoError(t, runtimes.Validate("runtime.server", r.GetServer()), f)
	}
}

package runtimes

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/durationpb"

	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
	schedulerv1 "github.com/bmaas/bmaas/api/bmaas/scheduler/v1"
)

func server() *schedulerv1.ProcessServer {
	return &schedulerv1.ProcessServer{Command: "/usr/bin/python3",
		Args:           []string{"server.py", "--model", "{{.ModelDir}}/model.pt", "--port={{.HTTPPort}}", "--threads={{.Params.threads}}"},
		Env:            map[string]string{"OMP_NUM_THREADS": "{{.Params.threads}}", "NAME": "{{.ModelName}}"},
		Protocols:      []string{ProtocolV2REST},
		ReadinessProbe: &schedulerv1.ReadinessProbe{HttpPath: "/v2/health/ready", InitialDelay: durationpb.New(time.Second)}}
}

func TestValidateAcceptsAServer(t *testing.T) {
	require.NoError(t, Validate("runtime.server", server()))
	g := &schedulerv1.ProcessServer{Command: "bmaas", Args: []string{"replica", "--grpc-port", "{{.GRPCPort}}"},
		Protocols: []string{ProtocolV2GRPC}, ReadinessProbe: &schedulerv1.ReadinessProbe{Grpc: true}}
	require.NoError(t, Validate("runtime.server", g))
}

func TestValidateNamesTheField(t *testing.T) {
	for _, c := range []struct {
		field string
		edit  func(*schedulerv1.ProcessServer)
	}{
		{"runtime.server.command", func(s *schedulerv1.ProcessServer) { s.Command = " " }},
		{"runtime.server.args[1]", func(s *schedulerv1.ProcessServer) { s.Args[1] = "{{.ModelDir" }},
		{"runtime.server.args[0]", func(s *schedulerv1.ProcessServer) { s.Args[0] = "{{.ModelPath}}" }},
		{"runtime.server.env.NAME", func(s *schedulerv1.ProcessServer) { s.Env["NAME"] = "{{" }},
		{"runtime.server.env.BMAAS_MODEL_DIR", func(s *schedulerv1.ProcessServer) { s.Env["BMAAS_MODEL_DIR"] = "/x" }},
		{"runtime.server.protocols", func(s *schedulerv1.ProcessServer) { s.Protocols = nil }},
		{"runtime.server.protocols[1]", func(s *schedulerv1.ProcessServer) { s.Protocols = []string{"v2-rest", "http"} }},
		{"runtime.server.protocols[1]", func(s *schedulerv1.ProcessServer) { s.Protocols = []string{"v2-rest", "v2-rest"} }},
		{"runtime.server.readiness_probe", func(s *schedulerv1.ProcessServer) { s.ReadinessProbe = nil }},
		{"runtime.server.readiness_probe", func(s *schedulerv1.ProcessServer) { s.ReadinessProbe.HttpPath = "" }},
		{"runtime.server.readiness_probe.http_path", func(s *schedulerv1.ProcessServer) { s.ReadinessProbe.HttpPath = "ready" }},
		{"runtime.server.readiness_probe.grpc", func(s *schedulerv1.ProcessServer) { s.ReadinessProbe.Grpc = true }},
		{"runtime.server.readiness_probe.http_path", func(s *schedulerv1.ProcessServer) { s.Protocols = []string{"v2-grpc"} }},
		{"runtime.server.readiness_probe.timeout", func(s *schedulerv1.ProcessServer) { s.ReadinessProbe.Timeout = durationpb.New(-time.Second) }},
		{"runtime.server.workdir", func(s *schedulerv1.ProcessServer) { s.Workdir = "srv/model" }},
		{"runtime.server.workdir", func(s *schedulerv1.ProcessServer) { s.Workdir, s.CodeBundleSha256 = "/srv", "ab" }},
	} {
		s := server()
		c.edit(s)
		err := Validate("runtime.server", s)
		require.Error(t, err, c.field)
		require.True(t, strings.HasPrefix(err.Error(), c.field+":"), "%s: %v", c.field, err)
	}
}

func TestRenderFillsTheContract(t *testing.T) {
	v := Vars{ModelDir: "/data/m", ModelName: "bc", ModelVersion: 3, HTTPPort: 8001, GRPCPort: 9001,
		Params: map[string]string{"threads": "2"}, GPUs: []int32{0, 2}, Token: "tok"}
	args, env, err := Render(server(), v)
	require.NoError(t, err)
	require.Equal(t, []string{"server.py", "--model", "/data/m/model.pt", "--port=8001", "--threads=2"}, args)
	require.Equal(t, []string{"NAME=bc", "OMP_NUM_THREADS=2"}, env)
	require.Equal(t, []string{"BMAAS_MODEL_DIR=/data/m", "BMAAS_MODEL_NAME=bc", "BMAAS_MODEL_VERSION=3",
		"BMAAS_HTTP_PORT=8001", "BMAAS_GRPC_PORT=9001", `BMAAS_PARAMS={"threads":"2"}`, "BMAAS_TOKEN=tok",
		"CUDA_VISIBLE_DEVICES=0,2"}, ContractEnv(v))

	// A parameter an argument needs that the deployment does not set.
	v.Params = nil
	_, _, err = Render(server(), v)
	require.ErrorContains(t, err, "runtime.server.args[4]")
	require.ErrorContains(t, err, "threads")
	require.Contains(t, ContractEnv(v), "BMAAS_PARAMS={}")
}

func TestFormatsAndBuiltins(t *testing.T) {
	require.Equal(t, FormatPyTorch, FormatName(registryv1.ModelFormat_MODEL_FORMAT_PYTORCH))
	require.Equal(t, FormatOther, FormatName(registryv1.ModelFormat_MODEL_FORMAT_UNSPECIFIED))
	for _, r := range BuiltinRuntimes() {
		require.True(t, Builtin(r.Name))
		require.Contains(t, Formats(), r.Formats[0].Name)
	}
	require.False(t, Builtin("torch-v2"))
}

func TestProbeDefaults(t *testing.T) {
	p := ProbeDefaults(&schedulerv1.ReadinessProbe{HttpPath: "/ready", Timeout: durationpb.New(3 * time.Second)})
	require.Equal(t, Probe{HTTPPath: "/ready", Period: time.Second, Timeout: 3 * time.Second, StartupTimeout: 5 * time.Minute}, p)
}

package gateway

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"

	gatewayv1 "github.com/bmaas/bmaas/api/bmaas/gateway/v1"
	schedulerv1 "github.com/bmaas/bmaas/api/bmaas/scheduler/v1"
	"github.com/bmaas/bmaas/pkg/apierr"
	"github.com/bmaas/bmaas/pkg/runtimes"
)

func torchRuntime() *gatewayv1.Runtime {
	return &gatewayv1.Runtime{Name: "torch-v2",
		Formats: []*gatewayv1.RuntimeFormat{{Name: "pytorch", Priority: 1}, {Name: "onnx"}},
		Server: &schedulerv1.ProcessServer{Command: "/usr/bin/python3", Args: []string{"serve.py", "--port={{.HTTPPort}}"},
			Protocols: []string{runtimes.ProtocolV2REST}, ReadinessProbe: &schedulerv1.ReadinessProbe{HttpPath: "/v2/health/ready"}},
		Resources: &schedulerv1.Resources{CpuMillis: 1000, MemoryBytes: 2 << 30}, TerminationGraceSeconds: 30}
}

func TestValidateRuntimeAcceptsAProcessRuntime(t *testing.T) {
	t.Parallel()
	require.NoError(t, validateRuntime(torchRuntime()))
}

func TestValidateRuntimeNamesTheField(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		field string
		edit  func(*gatewayv1.Runtime)
	}{
		{"runtime.name", func(r *gatewayv1.Runtime) { r.Name = "Torch_V2" }},
		{"runtime.name", func(r *gatewayv1.Runtime) { r.Name = "" }},
		{"runtime.name", func(r *gatewayv1.Runtime) { r.Name = "native" }},
		{"runtime.name", func(r *gatewayv1.Runtime) { r.Name = "onnx" }},
		{"runtime.formats", func(r *gatewayv1.Runtime) { r.Formats = nil }},
		{"runtime.formats[1].name", func(r *gatewayv1.Runtime) { r.Formats[1].Name = "tensorflow" }},
		{"runtime.formats[1].name", func(r *gatewayv1.Runtime) { r.Formats[1].Name = "pytorch" }},
		{"runtime.server", func(r *gatewayv1.Runtime) { r.Server = nil }},
		{"runtime.server.command", func(r *gatewayv1.Runtime) { r.Server.Command = "" }},
		{"runtime.server.args[1]", func(r *gatewayv1.Runtime) { r.Server.Args[1] = "--port={{.HTTPPort" }},
		{"runtime.server.protocols[0]", func(r *gatewayv1.Runtime) { r.Server.Protocols = []string{"http"} }},
		{"runtime.server.readiness_probe", func(r *gatewayv1.Runtime) { r.Server.ReadinessProbe = &schedulerv1.ReadinessProbe{} }},
		{"runtime.resources.memory_bytes", func(r *gatewayv1.Runtime) { r.Resources.MemoryBytes = -1 }},
		{"runtime.resources.gpu_memory_bytes", func(r *gatewayv1.Runtime) { r.Resources.GpuMemoryBytes = -1 }},
		{"runtime.termination_grace_seconds", func(r *gatewayv1.Runtime) { r.TerminationGraceSeconds = 3601 }},
		{"runtime.termination_grace_seconds", func(r *gatewayv1.Runtime) { r.TerminationGraceSeconds = -1 }},
	} {
		r := torchRuntime()
		c.edit(r)
		err := validateRuntime(r)
		var fe *apierr.FieldError
		require.ErrorAs(t, err, &fe, c.field)
		require.Equal(t, c.field, fe.Field, "%v", err)
	}
}

func TestChooseRuntime(t *testing.T) {
	t.Parallel()
	low := torchRuntime()
	low.Name, low.Formats = "a-torch", []*gatewayv1.RuntimeFormat{{Name: "pytorch", Priority: 1}}
	high := torchRuntime()
	high.Name, high.Formats = "z-torch", []*gatewayv1.RuntimeFormat{{Name: "pytorch", Priority: 5}}
	onnxToo := torchRuntime() // serves onnx at priority 0, as the built-in does
	all := append(runtimes.BuiltinRuntimes(), low, high, onnxToo)

	pick := func(named, format string) (string, error) {
		r, err := chooseRuntime(all, "default", named, format, "version 3 of bc")
		return r.GetName(), err
	}
	got, err := pick("", "pytorch")
	require.NoError(t, err)
	require.Equal(t, "z-torch", got, "the highest priority wins")
	got, err = pick("", "onnx")
	require.NoError(t, err)
	require.Equal(t, "onnx", got, "ties are broken by name")
	got, err = pick("", "native")
	require.NoError(t, err)
	require.Equal(t, "native", got)
	got, err = pick("a-torch", "pytorch")
	require.NoError(t, err)
	require.Equal(t, "a-torch", got, "a named runtime is taken as is")

	// Equal priorities: the first name.
	high.Formats[0].Priority = 1
	got, _ = pick("", "pytorch")
	require.Equal(t, "a-torch", got)

	_, err = pick("nope", "pytorch")
	require.Equal(t, codes.NotFound, apierr.Code(err))
	require.True(t, strings.HasPrefix(err.Error(), "deployment.runtime: "), err.Error())

	_, err = pick("a-torch", "onnx")
	var fe *apierr.FieldError
	require.ErrorAs(t, err, &fe)
	require.Equal(t, "deployment.runtime", fe.Field)
	require.Equal(t, `runtime "a-torch" serves pytorch, not onnx (version 3 of bc is onnx)`, fe.Msg)

	_, err = pick("", "other")
	require.ErrorAs(t, err, &fe)
	require.Equal(t, "deployment.model", fe.Field)
	require.Contains(t, fe.Msg, "no runtime serves other")
	require.Contains(t, fe.Msg, "z-torch (pytorch)", "it lists what the runtimes serve")
}

func TestServingRuntimeCarriesTheServer(t *testing.T) {
	t.Parallel()
	d := &gatewayv1.Deployment{Name: "bc", MaxBatchSize: 8, Parameters: map[string]string{"threads": "2"}}
	rt := torchRuntime()
	sr := servingRuntime(d, 3, rt)
	require.Equal(t, "torch-v2", sr.Runtime)
	require.Equal(t, int64(3), sr.Version)
	require.Equal(t, int32(8), sr.MaxBatchSize)
	require.Equal(t, "/usr/bin/python3", sr.GetServer().GetCommand())
	require.Equal(t, map[string]string{"threads": "2"}, sr.Parameters)
	sr.Server.Command = "changed"
	require.Equal(t, "/usr/bin/python3", rt.Server.Command, "the job holds a copy")

	b := servingRuntime(d, 3, runtimes.BuiltinRuntimes()[1])
	require.Equal(t, "onnx", b.Runtime)
	require.Nil(t, b.Server, "a built-in runtime has no process server")
}

func TestWithDefaultsFillsFieldByField(t *testing.T) {
	t.Parallel()
	def := &schedulerv1.Resources{CpuMillis: 1000, MemoryBytes: 2 << 30, Gpus: 1}
	got := withDefaults(&schedulerv1.Resources{CpuMillis: 250, GpuMemoryBytes: 10 << 30}, def)
	require.Equal(t, int64(250), got.CpuMillis, "the deployment's wins")
	require.Equal(t, int64(2<<30), got.MemoryBytes, "the runtime's fills")
	require.Equal(t, int32(1), got.Gpus)
	require.Equal(t, int64(10<<30), got.GpuMemoryBytes)
	require.Equal(t, int64(1000), withDefaults(nil, def).CpuMillis)
	require.Nil(t, withDefaults(nil, nil))

	c := Config{ReplicaCPUMillis: 250, ReplicaMemoryBytes: 256 << 20}
	r := c.replicaResources(withDefaults(nil, def), nil)
	require.Equal(t, int64(1000), r.CpuMillis, "the runtime's default over the gateway's")
	require.Equal(t, int64(250), c.replicaResources(withDefaults(nil, nil), nil).CpuMillis, "the gateway's without either")
}

func TestRuntimePageTokens(t *testing.T) {
	t.Parallel()
	i, st, err := parseRuntimeToken(runtimeToken(tokenBuiltin + "1"))
	require.NoError(t, err)
	require.Equal(t, 1, i)
	require.Empty(t, st)
	i, st, err = parseRuntimeToken(runtimeToken(tokenStored + "abc"))
	require.NoError(t, err)
	require.Equal(t, len(runtimes.BuiltinRuntimes()), i)
	require.Equal(t, "abc", st)
	for _, bad := range []string{"!!", runtimeToken("x"), runtimeToken(tokenBuiltin + "9"), runtimeToken(tokenBuiltin + "-1")} {
		_, _, err := parseRuntimeToken(bad)
		var fe *apierr.FieldError
		require.ErrorAs(t, err, &fe, bad)
		require.Equal(t, "page_token", fe.Field)
	}
}

func TestNormalizeChecksRuntimeAndParameters(t *testing.T) {
	t.Parallel()
	s := &Service{}
	ok := &gatewayv1.Deployment{Model: "bc@3", Runtime: "torch-v2", Parameters: map[string]string{"threads": "2", "max_len": "x"}}
	require.NoError(t, s.normalize(t.Context(), ok))
	for field, d := range map[string]*gatewayv1.Deployment{
		"deployment.runtime":    {Model: "bc@3", Runtime: "Torch V2"},
		"deployment.parameters": {Model: "bc@3", Parameters: map[string]string{"max-len": "1"}},
		"deployment.resources":  {Model: "bc@3", Resources: &schedulerv1.Resources{GpuMemoryBytes: -1}},
	} {
		var fe *apierr.FieldError
		require.ErrorAs(t, s.normalize(t.Context(), d), &fe, field)
		require.Equal(t, field, fe.Field)
	}
}

package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/durationpb"
	"gopkg.in/yaml.v3"

	gatewayv1 "github.com/bmaas/bmaas/api/bmaas/gateway/v1"
	schedulerv1 "github.com/bmaas/bmaas/api/bmaas/scheduler/v1"
)

func runtimeCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "runtime",
		Aliases: []string{"runtimes"},
		Short:   "Serving runtimes: the model servers deployments run (create, list, get, delete)",
		Long: "A serving runtime is a model server a deployment's replicas run: \"native\" and \"onnx\" are\n" +
			"built in; others are processes on the nodes (a Python server, vLLM, Triton) that speak\n" +
			"KServe v2 or the OpenAI API. A deployment that names no runtime gets the runtime of the\n" +
			"highest priority among those serving its version's format.",
	}
	cmd.AddCommand(runtimeCreateCommand(g), runtimeListCommand(g), runtimeGetCommand(g), runtimeDeleteCommand(g))
	return cmd
}

func (c *client) runtimes() gatewayv1.RuntimeServiceClient {
	return gatewayv1.NewRuntimeServiceClient(c.conn)
}

// runtimeFlags are the flags of `bmaas runtime create`.
type runtimeFlags struct {
	file, command, workdir, code, probeHTTP       string
	cpu, memory, gpuMemory                        string
	formats, args, env, protocols                 []string
	probeGRPC                                     bool
	initialDelay, period, timeout, startup, grace time.Duration
	gpus                                          int32
}

// runtimeFlagFields name the flags for the fields a server's error starts
// with, when the runtime came from flags.
var runtimeFlagFields = fieldNames{
	"runtime.name": "NAME", "runtime.formats": "--format", "runtime.server": "--command",
	"runtime.server.command": "--command", "runtime.server.args": "--arg", "runtime.server.env": "--env",
	"runtime.server.workdir": "--workdir", "runtime.server.protocols": "--protocol",
	"runtime.server.readiness_probe":           "--probe-http or --probe-grpc",
	"runtime.server.readiness_probe.http_path": "--probe-http", "runtime.server.readiness_probe.grpc": "--probe-grpc",
	"runtime.server.readiness_probe.initial_delay":   "--probe-initial-delay",
	"runtime.server.readiness_probe.period":          "--probe-period",
	"runtime.server.readiness_probe.timeout":         "--probe-timeout",
	"runtime.server.readiness_probe.startup_timeout": "--startup-timeout",
	"runtime.resources.cpu_millis":                   "--cpu", "runtime.resources.memory_bytes": "--memory",
	"runtime.resources.gpus": "--gpus", "runtime.resources.gpu_memory_bytes": "--gpu-memory",
	"runtime.termination_grace_seconds": "--grace",
}

// runtimeSpecFlags are the flags that build a runtime; -f takes none of them.
var runtimeSpecFlags = []string{"format", "command", "arg", "env", "protocol", "probe-http", "probe-grpc",
	"probe-initial-delay", "probe-period", "probe-timeout", "startup-timeout", "workdir", "cpu", "memory",
	"gpus", "gpu-memory", "grace"}

// runtime builds the runtime from the flags; name is the NAME argument.
func (f *runtimeFlags) runtime(name string, changed func(string) bool) (*gatewayv1.Runtime, error) {
	if f.file != "" {
		for _, fl := range runtimeSpecFlags {
			if changed(fl) {
				return nil, usageErrorf("-f %s holds the runtime: give --%s in the file, not as a flag", f.file, fl)
			}
		}
		r, err := readRuntimeFile(f.file)
		if err != nil {
			return nil, err
		}
		if name != "" {
			r.Name = name
		}
		return r, nil
	}
	if name == "" {
		return nil, usageErrorf("expected NAME, or -f FILE; see --help")
	}
	if f.command == "" {
		return nil, usageErrorf("--command is required: the program each replica runs")
	}
	if len(f.formats) == 0 {
		return nil, usageErrorf("--format is required: the model formats it serves (e.g. --format pytorch:10)")
	}
	if f.probeHTTP != "" && f.probeGRPC {
		return nil, usageErrorf("give --probe-http PATH or --probe-grpc, not both")
	}
	if f.code != "" && f.workdir != "" {
		return nil, usageErrorf("give --code DIR (uploaded) or --workdir PATH (on the nodes), not both")
	}
	r := &gatewayv1.Runtime{Name: name}
	for _, s := range f.formats {
		name, p, hasP := strings.Cut(s, ":")
		rf := &gatewayv1.RuntimeFormat{Name: name}
		if hasP {
			n, err := strconv.ParseInt(p, 10, 32)
			if err != nil {
				return nil, usageErrorf("--format %q: expected FORMAT or FORMAT:PRIORITY (pytorch:10)", s)
			}
			rf.Priority = int32(n)
		}
		r.Formats = append(r.Formats, rf)
	}
	env, err := parseKV("env", f.env)
	if err != nil {
		return nil, err
	}
	probe := &schedulerv1.ReadinessProbe{HttpPath: f.probeHTTP, Grpc: f.probeGRPC}
	for _, d := range []struct {
		flag string
		v    time.Duration
		dst  **durationpb.Duration
	}{{"probe-initial-delay", f.initialDelay, &probe.InitialDelay}, {"probe-period", f.period, &probe.Period},
		{"probe-timeout", f.timeout, &probe.Timeout}, {"startup-timeout", f.startup, &probe.StartupTimeout}} {
		if changed(d.flag) {
			*d.dst = durationpb.New(d.v)
		}
	}
	r.Server = &schedulerv1.ProcessServer{Command: f.command, Args: f.args, Env: env, Workdir: f.workdir,
		Protocols: f.protocols, ReadinessProbe: probe}
	if r.Resources, err = resourceFlags(changed, f.cpu, f.memory, f.gpuMemory, f.gpus); err != nil {
		return nil, err
	}
	if f.grace < 0 {
		return nil, usageErrorf("--grace must not be negative")
	}
	r.TerminationGraceSeconds = int32(f.grace.Round(time.Second) / time.Second)
	return r, nil
}

// resourceFlags builds the resources --cpu, --memory, --gpus and
// --gpu-memory ask for; nil when none is given.
func resourceFlags(changed func(string) bool, cpu, memory, gpuMemory string, gpus int32) (*schedulerv1.Resources, error) {
	if !changed("cpu") && !changed("memory") && !changed("gpu-memory") && gpus == 0 {
		return nil, nil
	}
	if gpus < 0 {
		return nil, usageErrorf("--gpus must not be negative")
	}
	r := &schedulerv1.Resources{Gpus: gpus}
	var err error
	if changed("cpu") {
		if r.CpuMillis, err = parseCPU(cpu); err != nil {
			return nil, err
		}
	}
	if changed("memory") {
		if r.MemoryBytes, err = parseMemory(memory); err != nil {
			return nil, err
		}
	}
	if changed("gpu-memory") {
		if r.GpuMemoryBytes, err = parseMemory(gpuMemory); err != nil {
			return nil, usageErrorf("--gpu-memory %q: expected bytes with an optional unit (10Gi, 512Mi)", gpuMemory)
		}
	}
	return r, nil
}

// readRuntimeFile reads a Runtime message as protojson (.json) or YAML
// (the same fields), e.g. examples/runtimes/*/runtime.json.
func readRuntimeFile(path string) (*gatewayv1.Runtime, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, usageErrorf("-f: %v", err)
	}
	if ext := strings.ToLower(filepath.Ext(path)); ext == ".yaml" || ext == ".yml" {
		var doc any
		if err := yaml.Unmarshal(b, &doc); err != nil {
			return nil, usageErrorf("-f %s: %v", path, err)
		}
		if b, err = json.Marshal(doc); err != nil {
			return nil, usageErrorf("-f %s: %v", path, err)
		}
	}
	r := &gatewayv1.Runtime{}
	if err := protojson.Unmarshal(b, r); err != nil {
		return nil, usageErrorf("-f %s: not a runtime: %v", path, err)
	}
	return r, nil
}

func runtimeCreateCommand(g *globals) *cobra.Command {
	var f runtimeFlags
	cmd := &cobra.Command{
		Use:   "create NAME --format FORMAT[:PRIORITY]... --command PROG [--arg A]... --protocol P... --probe-http PATH [flags] | create -f FILE",
		Short: "Create a serving runtime from flags or from a file (protojson or YAML)",
		Long: "Create a process serving runtime. Its arguments and --env values are templates over\n" +
			"{{.ModelDir}}, {{.ModelName}}, {{.ModelVersion}}, {{.HTTPPort}}, {{.GRPCPort}} and\n" +
			"{{.Params.NAME}} (a deployment's --param); the server also gets BMAAS_MODEL_DIR,\n" +
			"BMAAS_HTTP_PORT, BMAAS_GRPC_PORT, BMAAS_PARAMS, BMAAS_TOKEN and CUDA_VISIBLE_DEVICES.\n" +
			"--protocol is what it speaks: v2-rest, v2-grpc, openai. --code DIR uploads DIR as a code\n" +
			"bundle the server runs in (as `bmaas train --bundle` does).",
		Example: "  bmaas runtime create torch-v2 --format pytorch:10 --code examples/runtimes/torch-v2 \\\n" +
			"    --command /usr/bin/python3 --arg server.py --protocol v2-rest \\\n" +
			"    --probe-http /v2/health/ready --startup-timeout 2m --memory 2Gi --grace 10s\n" +
			"  bmaas runtime create -f examples/runtimes/torch-v2/runtime.json --code examples/runtimes/torch-v2",
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, a []string) error {
			name := ""
			if len(a) == 1 {
				name = a[0]
			}
			r, err := f.runtime(name, cmd.Flags().Changed)
			if err != nil {
				return err
			}
			return g.withClient(cmd, func(ctx context.Context, c *client) error {
				if f.code != "" {
					if err := checkBundle(f.code, nil); err != nil {
						return err
					}
					if r.Server == nil {
						r.Server = &schedulerv1.ProcessServer{}
					}
					if r.Server.Workdir != "" {
						return usageErrorf("give --code DIR or a workdir, not both")
					}
					b, err := uploadBundle(ctx, cmd, c, f.code)
					if err != nil {
						return err
					}
					r.Server.CodeBundleSha256 = b.GetSha256()
				}
				ctx, cancel := c.call(ctx)
				defer cancel()
				resp, err := c.runtimes().CreateRuntime(ctx, &gatewayv1.CreateRuntimeRequest{Runtime: r})
				if err != nil {
					if f.file == "" {
						return runtimeFlagFields.rename(renameFormat(err, f.formats), nil)
					}
					return err
				}
				return printRuntime(g, cmd, resp.GetRuntime())
			})
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&f.file, "file", "f", "", "a Runtime as JSON (protojson) or YAML, e.g. examples/runtimes/*/runtime.json")
	fl.StringArrayVar(&f.formats, "format", nil, "a model format it serves, with its priority: pytorch, onnx:5, other (repeatable)")
	fl.StringVar(&f.command, "command", "", "the server's program: a path or a name on the nodes' PATH")
	fl.StringArrayVar(&f.args, "arg", nil, "an argument of the server, a template (repeatable)")
	fl.StringArrayVar(&f.env, "env", nil, "KEY=VALUE in the server's environment, VALUE a template (repeatable)")
	fl.StringArrayVar(&f.protocols, "protocol", nil, "a protocol it speaks: v2-rest, v2-grpc or openai (repeatable)")
	fl.StringVar(&f.probeHTTP, "probe-http", "", "readiness: the HTTP path that answers 200 once the model is loaded (/v2/health/ready)")
	fl.BoolVar(&f.probeGRPC, "probe-grpc", false, "readiness: KServe v2 ServerReady over gRPC")
	fl.DurationVar(&f.initialDelay, "probe-initial-delay", 0, "wait before the first readiness probe")
	fl.DurationVar(&f.period, "probe-period", 0, "time between readiness probes (default 1s)")
	fl.DurationVar(&f.timeout, "probe-timeout", 0, "timeout of one readiness probe (default 1s)")
	fl.DurationVar(&f.startup, "startup-timeout", 0, "longest a replica may take to become ready (default 5m)")
	fl.StringVar(&f.workdir, "workdir", "", "the server's working directory on the nodes (an absolute path)")
	fl.StringVar(&f.code, "code", "", "a local directory uploaded as a code bundle, the server's working directory")
	fl.StringVar(&f.cpu, "cpu", "", "CPU each replica reserves unless its deployment says: cores (2) or millicores (500m)")
	fl.StringVar(&f.memory, "memory", "", "memory limit of each replica unless its deployment says (2Gi)")
	fl.Int32Var(&f.gpus, "gpus", 0, "GPUs per replica unless its deployment says")
	fl.StringVar(&f.gpuMemory, "gpu-memory", "", "GPU memory per replica, a share of one GPU (10Gi)")
	fl.DurationVar(&f.grace, "grace", 0, "time between SIGTERM and SIGKILL when a replica stops (default: the agent's)")
	return cmd
}

func runtimeListCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List serving runtimes, the built-in ones first (all pages)",
		Args:  args("no arguments", 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.withClient(cmd, func(ctx context.Context, c *client) error {
				req := &gatewayv1.ListRuntimesRequest{}
				items, err := allPages(ctx, c, func(ctx context.Context, token string) ([]*gatewayv1.Runtime, string, error) {
					req.PageToken = token
					resp, err := c.runtimes().ListRuntimes(ctx, req)
					return resp.GetRuntimes(), resp.GetNextPageToken(), err
				})
				if err != nil {
					return err
				}
				all := &gatewayv1.ListRuntimesResponse{Runtimes: items}
				return g.printer(cmd.OutOrStdout()).print(all, func(t *table) {
					t.row("NAME", "FORMATS", "PROTOCOLS", "COMMAND", "CREATED")
					for _, r := range items {
						t.row(r.GetName(), runtimeFormats(r), runtimeProtocols(r), runtimeCommandLine(r), formatTime(r.GetCreateTime()))
					}
				})
			})
		},
	}
}

func runtimeGetCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "get NAME",
		Short: "Show a serving runtime",
		Args:  args("NAME", 1),
		RunE: func(cmd *cobra.Command, a []string) error {
			return g.withClient(cmd, func(ctx context.Context, c *client) error {
				ctx, cancel := c.call(ctx)
				defer cancel()
				resp, err := c.runtimes().GetRuntime(ctx, &gatewayv1.GetRuntimeRequest{Name: a[0]})
				if err != nil {
					return err
				}
				return printRuntime(g, cmd, resp.GetRuntime())
			})
		},
	}
}

func runtimeDeleteCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete a serving runtime (refused while a deployment uses it)",
		Args:  args("NAME", 1),
		RunE: func(cmd *cobra.Command, a []string) error {
			return g.withClient(cmd, func(ctx context.Context, c *client) error {
				ctx, cancel := c.call(ctx)
				defer cancel()
				if _, err := c.runtimes().DeleteRuntime(ctx, &gatewayv1.DeleteRuntimeRequest{Name: a[0]}); err != nil {
					return err
				}
				return done(g, cmd, "runtime %s deleted", a[0])
			})
		},
	}
}

// printRuntime prints one runtime: its formats, server, probe and
// resources.
func printRuntime(g *globals, cmd *cobra.Command, r *gatewayv1.Runtime) error {
	return g.printer(cmd.OutOrStdout()).print(r, func(t *table) {
		t.row("NAME", r.GetName())
		t.row("FORMATS", runtimeFormats(r))
		if r.GetBuiltin() {
			t.row("SERVER", "built in (bmaas replica)")
			return
		}
		s := r.GetServer()
		t.row("COMMAND", runtimeCommandLine(r))
		env := make([]string, 0, len(s.GetEnv()))
		for k, v := range s.GetEnv() {
			env = append(env, k+"="+v)
		}
		slices.Sort(env)
		t.row("ENV", orDash(strings.Join(env, " ")))
		dir := s.GetWorkdir()
		if sha := s.GetCodeBundleSha256(); sha != "" {
			dir = "code bundle " + shortDigest(sha)
		}
		t.row("WORKDIR", orDash(dir))
		t.row("PROTOCOLS", runtimeProtocols(r))
		t.row("READINESS", probeString(s.GetReadinessProbe()))
		if res := r.GetResources(); res != nil {
			t.row("RESOURCES", resourcesString(res)+" per replica (default)")
		}
		if gr := r.GetTerminationGraceSeconds(); gr > 0 {
			t.row("GRACE", fmt.Sprintf("%ds", gr))
		}
		t.row("CREATED", formatTime(r.GetCreateTime()))
	})
}

// runtimeFormats lists a runtime's formats with their priorities:
// "pytorch:10, onnx:0".
func runtimeFormats(r *gatewayv1.Runtime) string {
	out := make([]string, len(r.GetFormats()))
	for i, f := range r.GetFormats() {
		out[i] = fmt.Sprintf("%s:%d", f.GetName(), f.GetPriority())
	}
	return strings.Join(out, ", ")
}

func runtimeProtocols(r *gatewayv1.Runtime) string {
	if r.GetBuiltin() {
		return "v2-grpc"
	}
	return orDash(strings.Join(r.GetServer().GetProtocols(), ", "))
}

func runtimeCommandLine(r *gatewayv1.Runtime) string {
	if r.GetBuiltin() {
		return "(built in)"
	}
	return strings.Join(append([]string{r.GetServer().GetCommand()}, r.GetServer().GetArgs()...), " ")
}

// probeString describes a readiness probe: "GET /v2/health/ready, startup
// timeout 5m0s".
func probeString(p *schedulerv1.ReadinessProbe) string {
	what := "-"
	switch {
	case p.GetHttpPath() != "":
		what = "GET " + p.GetHttpPath()
	case p.GetGrpc():
		what = "gRPC ServerReady"
	}
	for _, d := range []struct {
		name string
		v    *durationpb.Duration
	}{{"initial delay", p.GetInitialDelay()}, {"period", p.GetPeriod()}, {"timeout", p.GetTimeout()}, {"startup timeout", p.GetStartupTimeout()}} {
		if d.v != nil {
			what += fmt.Sprintf(", %s %s", d.name, d.v.AsDuration())
		}
	}
	return what
}

// formatFieldRE is the field of one format in a server's error.
var formatFieldRE = regexp.MustCompile(`^runtime\.formats\[(\d+)\]\.name: `)

// renameFormat makes an error about runtime.formats[i].name name the
// --format value the user typed instead.
func renameFormat(err error, formats []string) error {
	s, ok := status.FromError(err)
	if !ok || err == nil {
		return err
	}
	m := formatFieldRE.FindStringSubmatch(s.Message())
	if m == nil {
		return err
	}
	i, _ := strconv.Atoi(m[1])
	if i >= len(formats) {
		return err
	}
	return &statusError{s: status.New(s.Code(), "--format "+formats[i]+": "+strings.TrimPrefix(s.Message(), m[0]))}
}

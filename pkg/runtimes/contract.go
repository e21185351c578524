package runtimes

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/template"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	schedulerv1 "github.com/bmaas/bmaas/api/bmaas/scheduler/v1"
	"github.com/bmaas/bmaas/pkg/apierr"
)

// Vars is what a process server's arguments and environment values are
// templated with, and what its contract environment says:
//
//	{{.ModelDir}} {{.ModelName}} {{.ModelVersion}} {{.HTTPPort}}
//	{{.GRPCPort}} {{.Params.<name>}}
type Vars struct {
	// ModelDir holds the version's artifact (unpacked when an archive).
	ModelDir string
	// ModelName is the name clients use: the deployment's.
	ModelName    string
	ModelVersion int64
	HTTPPort     int
	GRPCPort     int
	// Params are the deployment's parameters.
	Params map[string]string
	// GPUs are the node's GPU indices the replica may use.
	GPUs []int32
	// Token is the replica's bearer token: the gateway sends it.
	Token string
}

// The serving contract's environment variables.
const (
	EnvModelDir     = "BMAAS_MODEL_DIR"
	EnvModelName    = "BMAAS_MODEL_NAME"
	EnvModelVersion = "BMAAS_MODEL_VERSION"
	EnvHTTPPort     = "BMAAS_HTTP_PORT"
	EnvGRPCPort     = "BMAAS_GRPC_PORT"
	EnvParams       = "BMAAS_PARAMS"
	EnvToken        = "BMAAS_TOKEN"
	EnvCUDA         = "CUDA_VISIBLE_DEVICES"
)

// ContractEnv is the serving contract as KEY=VALUE: BMAAS_MODEL_DIR,
// BMAAS_MODEL_NAME, BMAAS_MODEL_VERSION, BMAAS_HTTP_PORT,
// BMAAS_GRPC_PORT, BMAAS_PARAMS (the parameters as a JSON object),
// BMAAS_TOKEN (the bearer token the gateway sends; a server may check
// it) and CUDA_VISIBLE_DEVICES (empty without GPUs).
func ContractEnv(v Vars) []string {
	params := v.Params
	if params == nil {
		params = map[string]string{}
	}
	p, _ := json.Marshal(params) // a map of strings always encodes
	gpus := make([]string, len(v.GPUs))
	for i, g := range v.GPUs {
		gpus[i] = strconv.Itoa(int(g))
	}
	return []string{
		EnvModelDir + "=" + v.ModelDir,
		EnvModelName + "=" + v.ModelName,
		EnvModelVersion + "=" + strconv.FormatInt(v.ModelVersion, 10),
		EnvHTTPPort + "=" + strconv.Itoa(v.HTTPPort),
		EnvGRPCPort + "=" + strconv.Itoa(v.GRPCPort),
		EnvParams + "=" + string(p),
		EnvToken + "=" + v.Token,
		EnvCUDA + "=" + strings.Join(gpus, ","),
	}
}

// Render fills the server's arguments and its own environment (KEY=VALUE,
// sorted by key) from v. A parameter an argument names that the
// deployment does not set is an error naming it.
func Render(s *schedulerv1.ProcessServer, v Vars) (args, env []string, err error) {
	for i, a := range s.GetArgs() {
		out, err := render(fmt.Sprintf("runtime.server.args[%d]", i), a, v)
		if err != nil {
			return nil, nil, err
		}
		args = append(args, out)
	}
	for _, k := range slices.Sorted(maps.Keys(s.GetEnv())) {
		out, err := render("runtime.server.env."+k, s.Env[k], v)
		if err != nil {
			return nil, nil, err
		}
		env = append(env, k+"="+out)
	}
	return args, env, nil
}

func render(field, text string, v Vars) (string, error) {
	t, err := parse(field, text)
	if err != nil {
		return "", err
	}
	if v.Params == nil {
		v.Params = map[string]string{}
	}
	var b bytes.Buffer
	if err := t.Execute(&b, v); err != nil {
		return "", apierr.Invalid(field, "%s", strings.TrimPrefix(err.Error(), "template: "+field+": "))
	}
	return b.String(), nil
}

// parse reads one templated value; a parameter missing at render time is
// an error, not "<no value>".
func parse(field, text string) (*template.Template, error) {
	t, err := template.New(field).Option("missingkey=error").Parse(text)
	if err != nil {
		return nil, apierr.Invalid(field, "%s", strings.TrimPrefix(err.Error(), "template: "+field+":"))
	}
	return t, nil
}

// Validate checks a process server as a runtime declares it; errors name
// the field under prefix (e.g. "runtime.server.args[2]").
func Validate(prefix string, s *schedulerv1.ProcessServer) error {
	if s == nil {
		return apierr.Invalid(prefix, "required: a runtime runs a server")
	}
	if strings.TrimSpace(s.Command) == "" {
		return apierr.Invalid(prefix+".command", "required")
	}
	if s.CodeBundleSha256 != "" && s.Workdir != "" {
		return apierr.Invalid(prefix+".workdir", "give a code bundle or a work directory, not both")
	}
	if s.Workdir != "" && !strings.HasPrefix(s.Workdir, "/") {
		return apierr.Invalid(prefix+".workdir", "must be an absolute path on the nodes, got %q", s.Workdir)
	}
	sample := Vars{ModelDir: "/m", ModelName: "m", ModelVersion: 1, HTTPPort: 1, GRPCPort: 2}
	for i, a := range s.Args {
		f := fmt.Sprintf("%s.args[%d]", prefix, i)
		t, err := parse(f, a)
		if err != nil {
			return err
		}
		// Unknown fields fail here; parameters are checked per deployment.
		if err := t.Option("missingkey=zero").Execute(&bytes.Buffer{}, sample); err != nil {
			return apierr.Invalid(f, "%s", strings.TrimPrefix(err.Error(), "template: "+f+": "))
		}
	}
	for k, val := range s.Env {
		f := prefix + ".env." + k
		if k == "" || strings.ContainsAny(k, "= \t\n") {
			return apierr.Invalid(prefix+".env", "bad variable name %q", k)
		}
		if strings.HasPrefix(k, "BMAAS_") || k == EnvCUDA {
			return apierr.Invalid(f, "%s is set by the serving contract", k)
		}
		if _, err := parse(f, val); err != nil {
			return err
		}
	}
	if len(s.Protocols) == 0 {
		return apierr.Invalid(prefix+".protocols", "required: one or more of %s", list(Protocols()))
	}
	for i, p := range s.Protocols {
		if !slices.Contains(Protocols(), p) {
			return apierr.Invalid(fmt.Sprintf("%s.protocols[%d]", prefix, i), "unknown protocol %q: one of %s", p, list(Protocols()))
		}
		if slices.Index(s.Protocols, p) != i {
			return apierr.Invalid(fmt.Sprintf("%s.protocols[%d]", prefix, i), "%q given twice", p)
		}
	}
	return validateProbe(prefix+".readiness_probe", s.ReadinessProbe, s.Protocols)
}

func validateProbe(prefix string, p *schedulerv1.ReadinessProbe, protocols []string) error {
	if p == nil {
		return apierr.Invalid(prefix, "required: an http_path (e.g. /v2/health/ready) or grpc")
	}
	switch {
	case p.HttpPath != "" && p.Grpc:
		return apierr.Invalid(prefix+".grpc", "give http_path or grpc, not both")
	case p.HttpPath != "":
		if !strings.HasPrefix(p.HttpPath, "/") {
			return apierr.Invalid(prefix+".http_path", "must start with /, got %q", p.HttpPath)
		}
		if !SpeaksHTTP(protocols) {
			return apierr.Invalid(prefix+".http_path", "an HTTP probe needs a server that speaks %s or %s", ProtocolV2REST, ProtocolOpenAI)
		}
	case p.Grpc:
		if !Speaks(protocols, ProtocolV2GRPC) {
			return apierr.Invalid(prefix+".grpc", "a gRPC probe needs a server that speaks %s", ProtocolV2GRPC)
		}
	default:
		return apierr.Invalid(prefix, "required: an http_path (e.g. /v2/health/ready) or grpc")
	}
	for _, d := range []struct {
		name string
		v    *durationpb.Duration
	}{{"initial_delay", p.InitialDelay}, {"period", p.Period}, {"timeout", p.Timeout}, {"startup_timeout", p.StartupTimeout}} {
		if dur := d.v.AsDuration(); dur < 0 || dur > 24*time.Hour {
			return apierr.Invalid(prefix+"."+d.name, "must be between 0 and 24h, got %s", dur)
		}
	}
	return nil
}

// Probe is a readiness probe with its defaults filled in.
type Probe struct {
	HTTPPath                                      string
	GRPC                                          bool
	InitialDelay, Period, Timeout, StartupTimeout time.Duration
}

// ProbeDefaults fills a probe's unset durations: period and timeout 1 s,
// startup timeout 5 minutes (large weights load slowly).
func ProbeDefaults(p *schedulerv1.ReadinessProbe) Probe {
	out := Probe{HTTPPath: p.GetHttpPath(), GRPC: p.GetGrpc(), InitialDelay: p.GetInitialDelay().AsDuration(),
		Period: p.GetPeriod().AsDuration(), Timeout: p.GetTimeout().AsDuration(), StartupTimeout: p.GetStartupTimeout().AsDuration()}
	if out.Period <= 0 {
		out.Period = time.Second
	}
	if out.Timeout <= 0 {
		out.Timeout = time.Second
	}
	if out.StartupTimeout <= 0 {
		out.StartupTimeout = 5 * time.Minute
	}
	return out
}

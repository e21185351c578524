package cli

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	gatewayv1 "github.com/bmaas/bmaas/api/bmaas/gateway/v1"
	schedulerv1 "github.com/bmaas/bmaas/api/bmaas/scheduler/v1"
)

func deployCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "deploy",
		Aliases: []string{"deployment", "deployments"},
		Short:   "Serve model versions: create, list, inspect, scale, roll back and delete deployments",
	}
	cmd.AddCommand(deployCreateCommand(g), deployListCommand(g), deployGetCommand(g),
		deployScaleCommand(g), deployRollbackCommand(g), deployDeleteCommand(g), deployLogsCommand(g),
		deployPayloadsCommand(g), deployFeedbackCommand(g), deployMonitorCommand(g))
	return cmd
}

func (c *client) deployments() gatewayv1.DeploymentServiceClient {
	return gatewayv1.NewDeploymentServiceClient(c.conn)
}

// deployFlags are the flags of `bmaas deploy create`.
type deployFlags struct {
	model, name, canary, cpu, memory string
	runtime, gpuMemory, routing      string
	payloadSample                    float64
	payloadParts                     []string
	logPayloads                      bool
	params                           []string
	min, max, concurrency, batch     int32
	canaryPercent, gpus              int32
	queueDelay, scaleToZero          time.Duration
	noAutoscaling                    bool
}

// deployment builds the spec; changed reports whether a flag was given.
func (f *deployFlags) deployment(changed func(string) bool) (*gatewayv1.Deployment, error) {
	if f.model == "" {
		return nil, usageErrorf("--model is required (NAME@VERSION or NAME@ALIAS, e.g. iris@production)")
	}
	model, _, err := refArg(f.model)
	if err != nil {
		return nil, err
	}
	switch {
	case f.min < 0 || f.max < 0:
		return nil, usageErrorf("--min and --max must not be negative")
	case f.max != 0 && f.max < f.min:
		return nil, usageErrorf("--max (%d) must be at least --min (%d)", f.max, f.min)
	case f.queueDelay < 0 || f.scaleToZero < 0:
		return nil, usageErrorf("--max-queue-delay and --scale-to-zero must not be negative")
	case f.scaleToZero > 0 && f.min != 0:
		return nil, usageErrorf("--scale-to-zero needs --min 0")
	case f.canaryPercent < 0 || f.canaryPercent > 100:
		return nil, usageErrorf("--canary-percent must be within 0 and 100")
	}
	d := &gatewayv1.Deployment{Name: f.name, Model: f.model, MinReplicas: f.min, MaxReplicas: f.max,
		TargetConcurrency: f.concurrency, MaxBatchSize: f.batch, MaxQueueDelayMicros: f.queueDelay.Microseconds(),
		Autoscaling: !f.noAutoscaling, ScaleToZeroSeconds: int64(f.scaleToZero.Round(time.Second) / time.Second)}
	if f.canary != "" {
		name, ref, err := refArg(f.canary)
		if err != nil {
			return nil, err
		}
		v, err := strconv.ParseInt(ref, 10, 64)
		if name != model || err != nil || v <= 0 {
			return nil, usageErrorf("--canary %q: expected %s@VERSION, a version number of the deployed model", f.canary, model)
		}
		d.CanaryVersion, d.CanaryPercent = v, f.canaryPercent
		if !changed("canary-percent") {
			d.CanaryPercent = 10
		}
	} else if f.canaryPercent != 0 {
		return nil, usageErrorf("--canary-percent needs --canary NAME@VERSION")
	}
	if d.Resources, err = resourceFlags(changed, f.cpu, f.memory, f.gpuMemory, f.gpus); err != nil {
		return nil, err
	}
	d.Runtime = f.runtime
	if d.Routing, err = routingArg(f.routing); err != nil {
		return nil, err
	}
	if d.PayloadLogging, err = f.payloadLogging(changed); err != nil {
		return nil, err
	}
	if d.Parameters, err = parseKV("param", f.params); err != nil {
		return nil, err
	}
	return d, nil
}

func deployCreateCommand(g *globals) *cobra.Command {
	var f deployFlags
	cmd := &cobra.Command{
		Use:   "create --model NAME@REF [--name NAME] [--min N --max N] [flags]",
		Short: "Deploy a model version (NAME@VERSION) or follow an alias (NAME@production)",
		Long: "Create a deployment: replicas on the nodes load the version and serve it over the KServe v2\n" +
			"protocol under the deployment's name (default: the model's name). With an alias the\n" +
			"deployment rolls to each version the alias moves to. The autoscaler keeps the replicas\n" +
			"between --min and --max from the requests in flight over --target-concurrency.",
		Args: args("no arguments", 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			d, err := f.deployment(cmd.Flags().Changed)
			if err != nil {
				return err
			}
			return g.withClient(cmd, func(ctx context.Context, c *client) error {
				ctx, cancel := c.call(ctx)
				defer cancel()
				resp, err := c.deployments().CreateDeployment(ctx, &gatewayv1.CreateDeploymentRequest{Deployment: d})
				if err != nil {
					return err
				}
				return printDeployment(g, cmd, resp.GetDeployment())
			})
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.model, "model", "", "the model version to serve: NAME@VERSION or NAME@ALIAS (required)")
	fl.StringVar(&f.name, "name", "", "the deployment's name, its v2 model_name (default: the model's name)")
	fl.Int32Var(&f.min, "min", 1, "minimum replicas (0: scale to zero when idle, see --scale-to-zero)")
	fl.Int32Var(&f.max, "max", 0, "maximum replicas (default: --min, at least 1)")
	fl.Int32Var(&f.concurrency, "target-concurrency", 0, "requests in flight per replica the autoscaler aims at (default 4)")
	fl.Int32Var(&f.batch, "max-batch-size", 0, "rows one model call predicts with dynamic batching (0 or 1: off)")
	fl.DurationVar(&f.queueDelay, "max-queue-delay", 0, "longest a request waits for a batch to fill (e.g. 2ms)")
	fl.StringVar(&f.canary, "canary", "", "a second version, NAME@VERSION, that gets --canary-percent of the requests")
	fl.Int32Var(&f.canaryPercent, "canary-percent", 0, "share of requests for the canary (default 10 with --canary)")
	fl.DurationVar(&f.scaleToZero, "scale-to-zero", 0, "idle time after which a --min 0 deployment scales to zero (default: the gateway's, 60s)")
	fl.StringVar(&f.cpu, "cpu", "", "CPU each replica reserves: cores (2, 0.5) or millicores (500m); default: the gateway's, 250m")
	fl.StringVar(&f.memory, "memory", "", "memory limit of each replica (512Mi, 1Gi); default: the gateway's, 256Mi or more for a large model")
	fl.Int32Var(&f.gpus, "gpus", 0, "GPUs per replica")
	fl.StringVar(&f.gpuMemory, "gpu-memory", "", "GPU memory per replica, a share of one GPU (10Gi)")
	fl.StringVar(&f.runtime, "runtime", "", "the serving runtime (see bmaas runtime list); default: the highest priority one for the version's format")
	fl.StringArrayVar(&f.params, "param", nil, "k=v handed to a process runtime's server: {{.Params.k}} and BMAAS_PARAMS (repeatable)")
	fl.BoolVar(&f.noAutoscaling, "no-autoscaling", false, "keep --min replicas whatever the load")
	fl.BoolVar(&f.logPayloads, "log-payloads", false, "log requests and responses to the payload stream (see bmaas deploy payloads)")
	fl.Float64Var(&f.payloadSample, "payload-sample-rate", 1, "with --log-payloads, the share of requests logged (0 to 1)")
	fl.StringSliceVar(&f.payloadParts, "payload-parts", []string{"request", "response"}, "with --log-payloads, what is logged: request, response")
	fl.StringVar(&f.routing, "routing", "", "how a request picks a replica: round-robin, least-loaded or prefix (default: the less loaded of two at random; prefix on the OpenAI routes)")
	return cmd
}

// routings are --routing's values.
var routings = map[string]gatewayv1.Routing{"": gatewayv1.Routing_ROUTING_UNSPECIFIED,
	"round-robin": gatewayv1.Routing_ROUTING_ROUND_ROBIN, "least-loaded": gatewayv1.Routing_ROUTING_LEAST_LOADED,
	"prefix": gatewayv1.Routing_ROUTING_PREFIX}

func routingArg(s string) (gatewayv1.Routing, error) {
	r, ok := routings[s]
	if !ok {
		return 0, usageErrorf("--routing must be round-robin, least-loaded or prefix, not %q", s)
	}
	return r, nil
}

// routingString is a deployment's routing as --routing spells it.
func routingString(r gatewayv1.Routing) string {
	for k, v := range routings {
		if v == r && k != "" {
			return k
		}
	}
	return "default (the less loaded of two; prefix on the OpenAI routes)"
}

func deployListCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List deployments (all pages)",
		Args:  args("no arguments", 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.withClient(cmd, func(ctx context.Context, c *client) error {
				req := &gatewayv1.ListDeploymentsRequest{}
				items, err := allPages(ctx, c, func(ctx context.Context, token string) ([]*gatewayv1.Deployment, string, error) {
					req.PageToken = token
					resp, err := c.deployments().ListDeployments(ctx, req)
					return resp.GetDeployments(), resp.GetNextPageToken(), err
				})
				if err != nil {
					return err
				}
				all := &gatewayv1.ListDeploymentsResponse{Deployments: items}
				return g.printer(cmd.OutOrStdout()).print(all, func(t *table) { deploymentRows(t, all.GetDeployments()) })
			})
		},
	}
}

// deploymentRows prints the deployment table.
func deploymentRows(t *table, ds []*gatewayv1.Deployment) {
	t.row("NAME", "MODEL", "VERSION", "STATE", "READY", "MIN", "MAX", "CANARY", "CREATED")
	for _, d := range ds {
		st := d.GetStatus()
		t.row(d.GetName(), d.GetModel(), latestString(st.GetVersion()), orDash(d.GetState()),
			fmt.Sprintf("%d/%d", st.GetReadyReplicas(), st.GetDesiredReplicas()),
			fmt.Sprint(d.GetMinReplicas()), fmt.Sprint(d.GetMaxReplicas()), canaryString(d), formatTime(d.GetCreateTime()))
	}
}

func canaryString(d *gatewayv1.Deployment) string {
	if d.GetCanaryVersion() <= 0 {
		return "-"
	}
	return fmt.Sprintf("v%d %d%%", d.GetCanaryVersion(), d.GetCanaryPercent())
}

// printDeployment prints one deployment: its spec, status and replicas.
func printDeployment(g *globals, cmd *cobra.Command, d *gatewayv1.Deployment) error {
	return g.printer(cmd.OutOrStdout()).print(d, func(t *table) {
		st := d.GetStatus()
		t.row("NAME", d.GetName())
		t.row("MODEL", d.GetModel())
		t.row("VERSION", fmt.Sprintf("%s (previous %s)", latestString(st.GetVersion()), latestString(st.GetPreviousVersion())))
		t.row("STATE", orDash(d.GetState()))
		t.row("RUNTIME", runtimeString(d))
		if len(d.GetParameters()) > 0 {
			t.row("PARAMETERS", paramsString(d.GetParameters()))
		}
		t.row("REPLICAS", fmt.Sprintf("%d ready, %d desired, min %d, max %d",
			st.GetReadyReplicas(), st.GetDesiredReplicas(), d.GetMinReplicas(), d.GetMaxReplicas()))
		scale := "off"
		if d.GetAutoscaling() {
			scale = fmt.Sprintf("on, target concurrency %d", d.GetTargetConcurrency())
		}
		t.row("AUTOSCALING", scale)
		t.row("SCALE TO ZERO", scaleToZeroString(d, time.Now()))
		batching := "off"
		if d.GetMaxBatchSize() > 1 {
			batching = fmt.Sprintf("max %d rows, max delay %s", d.GetMaxBatchSize(), time.Duration(d.GetMaxQueueDelayMicros())*time.Microsecond)
		}
		t.row("BATCHING", batching)
		t.row("CANARY", canaryString(d))
		t.row("ROUTING", routingString(d.GetRouting()))
		if pl := d.GetPayloadLogging(); pl.GetSampleRate() > 0 {
			parts := []string{}
			if pl.GetRequest() || !pl.GetResponse() {
				parts = append(parts, "requests")
			}
			if pl.GetResponse() || !pl.GetRequest() {
				parts = append(parts, "responses")
			}
			t.row("PAYLOAD LOG", fmt.Sprintf("%s of %g%% (bmaas deploy payloads %s)", strings.Join(parts, " and "), 100*pl.GetSampleRate(), d.GetName()))
		}
		if r := st.GetReplicaResources(); r != nil {
			t.row("RESOURCES", resourcesString(r)+" per replica")
		} else if r := d.GetResources(); r != nil {
			t.row("RESOURCES", resourcesString(r)+" per replica")
		}
		t.row("CONCURRENCY", formatFloat(st.GetConcurrency()))
		if l := st.GetLlm(); l.GetRequests() > 0 {
			t.row("LLM", llmString(l))
		}
		t.row("CREATED", formatTime(d.GetCreateTime()))
		t.row("UPDATED", formatTime(d.GetUpdateTime()))
		if st.GetMessage() != "" {
			t.row("MESSAGE", st.GetMessage())
		}
		if len(st.GetReplicas()) > 0 {
			t.row("")
			t.row("REPLICA", "VERSION", "NODE", "ENDPOINT", "READY", "JOB STATE", "RESTARTS", "REASON")
			for _, r := range st.GetReplicas() {
				t.row(r.GetId(), fmt.Sprint(r.GetVersion()), orDash(r.GetNode()), orDash(r.GetEndpoint()),
					strconv.FormatBool(r.GetReady()), orDash(strings.TrimPrefix(r.GetJobState(), "JOB_STATE_")),
					fmt.Sprint(r.GetRestarts()), orDash(r.GetReason()))
			}
		}
	})
}

// scaleToZeroString says whether d scales to zero, how long it has been
// idle and after how long it goes.
func scaleToZeroString(d *gatewayv1.Deployment, now time.Time) string {
	if d.GetMinReplicas() > 0 {
		return fmt.Sprintf("never (min %d)", d.GetMinReplicas())
	}
	idle := "idle -"
	if lr := d.GetStatus().GetLastRequestTime(); lr != nil {
		idle = fmt.Sprintf("idle %ds", max(0, int64(now.Sub(lr.AsTime())/time.Second)))
	}
	if d.GetState() == "IDLE" {
		return fmt.Sprintf("at zero (%s); the next request starts a replica", idle)
	}
	after := "the gateway's default"
	if s := d.GetScaleToZeroSeconds(); s > 0 {
		after = fmt.Sprintf("%ds", s)
	}
	return fmt.Sprintf("%s, scales to zero after %s", idle, after)
}

// resourcesString is a replica's request: CPU (and what it may burst
// to), memory, GPUs.
func resourcesString(r *schedulerv1.Resources) string {
	cpu := "cpu " + formatCPU(r.GetCpuMillis())
	if r.GetCpuLimitMillis() > r.GetCpuMillis() {
		cpu += fmt.Sprintf(" (bursts to %s)", formatCPU(r.GetCpuLimitMillis()))
	}
	out := fmt.Sprintf("%s, memory %s", cpu, humanSize(r.GetMemoryBytes()))
	if r.GetGpus() > 0 {
		out += fmt.Sprintf(", gpus %d", r.GetGpus())
	}
	if r.GetGpuMemoryBytes() > 0 {
		out += fmt.Sprintf(", gpu memory %s", humanSize(r.GetGpuMemoryBytes()))
	}
	return out
}

// runtimeString is the runtime a deployment runs, and whether it was
// named or picked for the version's format.
func runtimeString(d *gatewayv1.Deployment) string {
	got := d.GetStatus().GetRuntime()
	switch {
	case d.GetRuntime() != "":
		return d.GetRuntime()
	case got != "":
		return got + " (picked for the version's format)"
	}
	return "-"
}

// paramsString lists parameters as k=v, sorted.
func paramsString(p map[string]string) string {
	out := make([]string, 0, len(p))
	for _, k := range slices.Sorted(maps.Keys(p)) {
		out = append(out, k+"="+p[k])
	}
	return strings.Join(out, " ")
}

// llmString says what the gateway measured of a language model's
// requests: "12 requests in 5m0s: first token after 45ms, 210 tokens/s a
// stream, 1234 prompt + 5678 completion tokens".
func llmString(l *gatewayv1.LLMStats) string {
	noun := "requests"
	if l.GetRequests() == 1 {
		noun = "request"
	}
	out := fmt.Sprintf("%d %s in %s:", l.GetRequests(), noun, (time.Duration(l.GetWindowSeconds()) * time.Second).Round(time.Second))
	if l.GetTimeToFirstTokenSeconds() > 0 {
		out += fmt.Sprintf(" first token after %s,", time.Duration(l.GetTimeToFirstTokenSeconds()*float64(time.Second)).Round(time.Millisecond))
	}
	if l.GetOutputTokensPerSecond() > 0 {
		out += fmt.Sprintf(" %.0f tokens/s a stream,", l.GetOutputTokensPerSecond())
	}
	return out + fmt.Sprintf(" %d prompt + %d completion tokens", l.GetPromptTokens(), l.GetCompletionTokens())
}

// payloadLogging is --log-payloads with its sample rate and parts.
func (f *deployFlags) payloadLogging(changed func(string) bool) (*gatewayv1.PayloadLogging, error) {
	if !f.logPayloads {
		if changed("payload-sample-rate") || changed("payload-parts") {
			return nil, usageErrorf("--payload-sample-rate and --payload-parts need --log-payloads")
		}
		return nil, nil
	}
	if f.payloadSample <= 0 || f.payloadSample > 1 {
		return nil, usageErrorf("--payload-sample-rate must be above 0 and at most 1, got %g", f.payloadSample)
	}
	pl := &gatewayv1.PayloadLogging{SampleRate: f.payloadSample}
	for _, p := range f.payloadParts {
		switch p {
		case "request":
			pl.Request = true
		case "response":
			pl.Response = true
		default:
			return nil, usageErrorf("--payload-parts: %q is not request or response", p)
		}
	}
	if !pl.Request && !pl.Response {
		return nil, usageErrorf("--payload-parts: name request, response or both")
	}
	return pl, nil
}

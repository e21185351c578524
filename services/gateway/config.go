package gateway

import (
	"flag"
	"fmt"
	"time"
)

// Config configures the inference gateway: deployments, the data plane
// and the autoscaler.
type Config struct {
	// RequestTimeout bounds one inference request (unless the caller's
	// deadline is shorter).
	RequestTimeout time.Duration `yaml:"request_timeout"`
	// GenerationTimeout bounds one request on the OpenAI-compatible
	// routes, a whole stream included.
	GenerationTimeout time.Duration `yaml:"generation_timeout"`
	// MaxRequestBytes caps a REST request body.
	MaxRequestBytes int64 `yaml:"max_request_bytes"`
	// ColdStartTimeout is how long a request to a deployment without a
	// ready replica is held while one starts.
	ColdStartTimeout time.Duration `yaml:"cold_start_timeout"`
	// MaxHeldRequests bounds the requests one deployment keeps waiting
	// for a replica; more are refused (429 with Retry-After on the OpenAI
	// routes, Unavailable elsewhere).
	MaxHeldRequests int `yaml:"max_held_requests"`
	// StreamKeepAlive is how often a streamed request on the OpenAI routes
	// that waits for a replica gets an SSE comment, so that clients and
	// proxies do not time it out.
	StreamKeepAlive time.Duration `yaml:"stream_keepalive"`
	// PayloadMaxAge and PayloadMaxBytes bound the stream of logged
	// requests and responses (BMAAS_PAYLOADS); the oldest go first.
	PayloadMaxAge   time.Duration `yaml:"payload_max_age"`
	PayloadMaxBytes int64         `yaml:"payload_max_bytes"`
	// ReconcileInterval is how often the leader reconciles deployments.
	ReconcileInterval time.Duration `yaml:"reconcile_interval"`
	// StableWindow and PanicWindow average in-flight concurrency for the
	// autoscaler, as Knative does; the panic window rules when its
	// average is PanicThreshold times the current capacity or more.
	StableWindow   time.Duration `yaml:"stable_window"`
	PanicWindow    time.Duration `yaml:"panic_window"`
	PanicThreshold float64       `yaml:"panic_threshold"`
	// LeaderTTL is the lease TTL of the gateway's leader election.
	LeaderTTL time.Duration `yaml:"leader_ttl"`
	// LoadReportInterval is how often every gateway reports its load per
	// deployment to the leader's autoscaler; the leader drops a gateway
	// whose latest report is three intervals old.
	LoadReportInterval time.Duration `yaml:"load_report_interval"`
	// ReplicaLane forwards ModelInfer over the replicas' inference lane
	// (pkg/lane) when they advertise one; gRPC otherwise.
	ReplicaLane bool `yaml:"replica_lane"`
	// ScaleToZeroAfter is the idle time after which a deployment with
	// min_replicas 0 that names none scales to zero.
	ScaleToZeroAfter time.Duration `yaml:"scale_to_zero_after"`
	// Replica resources, where a deployment leaves them unset (see
	// replicaResources): the CPU placement reserves, the CPU a replica may
	// burst to, and the least memory (more for a large model).
	ReplicaCPUMillis      int64 `yaml:"replica_cpu_millis"`
	ReplicaCPULimitMillis int64 `yaml:"replica_cpu_limit_millis"`
	ReplicaMemoryBytes    int64 `yaml:"replica_memory_bytes"`
}

// RegisterFlags registers the flags under the `gateway.` prefix; it holds
// the only defaults.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.DurationVar(&c.RequestTimeout, "gateway.request-timeout", 30*time.Second, "deadline of one inference request")
	fs.DurationVar(&c.GenerationTimeout, "gateway.generation-timeout", 10*time.Minute, "deadline of one request on the OpenAI-compatible routes (/openai/v1), streams included")
	fs.Int64Var(&c.MaxRequestBytes, "gateway.max-request-bytes", 16<<20, "largest REST inference request body")
	fs.DurationVar(&c.ColdStartTimeout, "gateway.cold-start-timeout", 60*time.Second, "how long a request waits for a deployment scaled to zero")
	fs.IntVar(&c.MaxHeldRequests, "gateway.max-held-requests", 1000, "most requests one deployment keeps waiting for a replica; more are refused")
	fs.DurationVar(&c.StreamKeepAlive, "gateway.stream-keepalive", 5*time.Second, "how often a stream waiting for a replica gets an SSE comment")
	fs.DurationVar(&c.PayloadMaxAge, "gateway.payload-max-age", 7*24*time.Hour, "how long logged requests and responses are kept")
	fs.Int64Var(&c.PayloadMaxBytes, "gateway.payload-max-bytes", 1<<30, "most bytes of logged requests and responses kept (the oldest go first)")
	fs.DurationVar(&c.ReconcileInterval, "gateway.reconcile-interval", time.Second, "interval of the leader's deployment reconcile")
	fs.DurationVar(&c.StableWindow, "gateway.stable-window", 60*time.Second, "autoscaler stable window")
	fs.DurationVar(&c.PanicWindow, "gateway.panic-window", 6*time.Second, "autoscaler panic window")
	fs.Float64Var(&c.PanicThreshold, "gateway.panic-threshold", 2, "panic when the panic window's load is this many times the capacity")
	fs.DurationVar(&c.LeaderTTL, "gateway.leader-ttl", 5*time.Second, "lease TTL of the gateway leader election")
	fs.DurationVar(&c.LoadReportInterval, "gateway.load-report-interval", time.Second, "how often each gateway reports its load to the leader's autoscaler")
	fs.BoolVar(&c.ReplicaLane, "gateway.replica-lane", true, "forward ModelInfer over the replicas' inference lane (gRPC when false)")
	fs.DurationVar(&c.ScaleToZeroAfter, "gateway.scale-to-zero-after", 60*time.Second, "idle time after which a deployment with min replicas 0 scales to zero, unless it names its own")
	fs.Int64Var(&c.ReplicaCPUMillis, "gateway.replica-cpu-millis", 250, "CPU a replica reserves on its node, in millicores, unless its deployment asks for more or less")
	fs.Int64Var(&c.ReplicaCPULimitMillis, "gateway.replica-cpu-limit-millis", 1000, "CPU a replica may use when its node has it idle (its CFS quota), in millicores")
	fs.Int64Var(&c.ReplicaMemoryBytes, "gateway.replica-memory-bytes", 256<<20, "least memory of a replica (its hard limit), unless its deployment names it; a large model gets more")
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	switch {
	case c.RequestTimeout <= 0:
		return fmt.Errorf("gateway.request-timeout: must be positive, got %s", c.RequestTimeout)
	case c.GenerationTimeout <= 0:
		return fmt.Errorf("gateway.generation-timeout: must be positive, got %s", c.GenerationTimeout)
	case c.MaxRequestBytes < 1<<10:
		return fmt.Errorf("gateway.max-request-bytes: must be at least 1 KiB, got %d", c.MaxRequestBytes)
	case c.ColdStartTimeout <= 0:
		return fmt.Errorf("gateway.cold-start-timeout: must be positive, got %s", c.ColdStartTimeout)
	case c.MaxHeldRequests < 1:
		return fmt.Errorf("gateway.max-held-requests: must be at least 1, got %d", c.MaxHeldRequests)
	case c.StreamKeepAlive <= 0:
		return fmt.Errorf("gateway.stream-keepalive: must be positive, got %s", c.StreamKeepAlive)
	case c.PayloadMaxAge <= 0:
		return fmt.Errorf("gateway.payload-max-age: must be positive, got %s", c.PayloadMaxAge)
	case c.PayloadMaxBytes < 1<<20:
		return fmt.Errorf("gateway.payload-max-bytes: must be at least 1 MiB, got %d", c.PayloadMaxBytes)
	case c.ReconcileInterval <= 0:
		return fmt.Errorf("gateway.reconcile-interval: must be positive, got %s", c.ReconcileInterval)
	case c.PanicWindow <= 0 || c.StableWindow < c.PanicWindow:
		return fmt.Errorf("gateway.stable-window (%s) must be at least gateway.panic-window (%s) > 0", c.StableWindow, c.PanicWindow)
	case c.PanicThreshold < 1:
		return fmt.Errorf("gateway.panic-threshold: must be at least 1, got %g", c.PanicThreshold)
	case c.LeaderTTL < time.Second:
		return fmt.Errorf("gateway.leader-ttl: must be at least 1s, got %s", c.LeaderTTL)
	case c.LoadReportInterval < 10*time.Millisecond:
		return fmt.Errorf("gateway.load-report-interval: must be at least 10ms, got %s", c.LoadReportInterval)
	case c.ScaleToZeroAfter < time.Second:
		return fmt.Errorf("gateway.scale-to-zero-after: must be at least 1s, got %s", c.ScaleToZeroAfter)
	case c.ReplicaCPUMillis <= 0 || c.ReplicaCPULimitMillis < 0:
		return fmt.Errorf("gateway.replica-cpu-millis must be positive and gateway.replica-cpu-limit-millis not negative, got %d and %d",
			c.ReplicaCPUMillis, c.ReplicaCPULimitMillis)
	case c.ReplicaMemoryBytes < 16<<20:
		return fmt.Errorf("gateway.replica-memory-bytes: must be at least 16 MiB, got %d", c.ReplicaMemoryBytes)
	}
	return nil
}

// DefaultConfig returns the flag defaults (for tests and embedding).
func DefaultConfig() Config {
	var c Config
	c.RegisterFlags(flag.NewFlagSet("", flag.ContinueOnError))
	return c
}

package evaluator

import (
	"flag"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// Config configures the evaluator: evaluations, experiments and promotion.
type Config struct {
	// LeaderTTL is the lease of the leader key: how long a crashed leader
	// keeps driving experiments before a standby takes over.
	LeaderTTL time.Duration `yaml:"leader_ttl"`
	// Poll is how often the leader looks at the jobs of running trials
	// when no watched job or experiment change woke it sooner.
	Poll time.Duration `yaml:"poll"`
	// AutoEvaluate evaluates every version a training job produces.
	AutoEvaluate bool `yaml:"auto_evaluate"`
	// AutoSweep is how often the leader looks for READY versions whose
	// automatic evaluations or promotion decision are missing (a lost
	// version.ready event) and does them; it also looks on gaining
	// leadership.
	AutoSweep time.Duration `yaml:"auto_sweep"`
	// MaxDatasetBytes caps a dataset evaluated in process.
	MaxDatasetBytes int64 `yaml:"max_dataset_bytes"`
	// MaxModelBytes caps a model artifact evaluated in process.
	MaxModelBytes int64 `yaml:"max_model_bytes"`
	// ServedTimeout bounds the wait for the replica of a version evaluated
	// through its serving runtime (a version that is not NATIVE).
	ServedTimeout time.Duration `yaml:"served_timeout"`
	// ServedBatchRows is the rows per request sent to that replica.
	ServedBatchRows int `yaml:"served_batch_rows"`
	// Monitoring of deployments from their payload log (monitor package).
	MonitorWindow     time.Duration `yaml:"monitor_window"`
	MonitorHorizon    time.Duration `yaml:"monitor_horizon"`
	MonitorRetention  time.Duration `yaml:"monitor_retention"`
	MonitorMaxSamples int           `yaml:"monitor_max_samples"`
	MonitorMaxIndexed int           `yaml:"monitor_max_indexed"`
	MonitorMinRows    int           `yaml:"monitor_min_rows"`
	// Alert rules (alerting package): how often the leader evaluates them,
	// how often a firing alert is sent again, and where alerts go.
	AlertInterval time.Duration `yaml:"alert_interval"`
	// NodeUsageInterval is how often the leader records the nodes' use.
	NodeUsageInterval time.Duration `yaml:"node_usage_interval"`
	AlertResend       time.Duration `yaml:"alert_resend"`
	Alertmanagers     string        `yaml:"alertmanagers"`
	AlertWebhooks     string        `yaml:"alert_webhooks"`
	ExternalURL       string        `yaml:"external_url"`
}

// RegisterFlags registers the flags under the `evaluator.` prefix; it holds
// the only defaults.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.DurationVar(&c.LeaderTTL, "evaluator.leader-ttl", 5*time.Second, "lease TTL of the evaluator's leader key")
	fs.DurationVar(&c.Poll, "evaluator.poll", 200*time.Millisecond, "period at which the leader checks the jobs of running trials when no job or experiment change wakes it")
	fs.BoolVar(&c.AutoEvaluate, "evaluator.auto-evaluate", true, "evaluate every version a training job produces")
	fs.DurationVar(&c.AutoSweep, "evaluator.auto-sweep", 30*time.Second, "period at which the leader evaluates READY versions whose automatic evaluations were missed (it also sweeps on gaining leadership)")
	fs.Int64Var(&c.MaxDatasetBytes, "evaluator.max-dataset-bytes", 512<<20, "largest dataset evaluated in process")
	fs.Int64Var(&c.MaxModelBytes, "evaluator.max-model-bytes", 1<<30, "largest model artifact evaluated in process")
	fs.DurationVar(&c.ServedTimeout, "evaluator.served-timeout", 10*time.Minute, "longest wait for the replica that evaluates a version through its serving runtime (ONNX, PyTorch, archives)")
	fs.IntVar(&c.ServedBatchRows, "evaluator.served-batch-rows", 1024, "rows per request sent to the replica that evaluates a version through its serving runtime")
	fs.DurationVar(&c.MonitorWindow, "evaluator.monitor-window", time.Minute, "length of a deployment's monitoring window (drift, data quality, traffic, live performance)")
	fs.DurationVar(&c.MonitorHorizon, "evaluator.monitor-horizon", 6*time.Hour, "how far back the payload log is replayed on start, and how late feedback may come")
	fs.DurationVar(&c.MonitorRetention, "evaluator.monitor-retention", 7*24*time.Hour, "how long monitoring windows are kept (JetStream bucket BMAAS_MONITOR)")
	fs.IntVar(&c.MonitorMaxSamples, "evaluator.monitor-max-samples", 5000, "values of a column kept per window for the drift tests (a uniform sample beyond)")
	fs.IntVar(&c.MonitorMaxIndexed, "evaluator.monitor-max-indexed", 1000000, "logged predictions remembered for joining feedback")
	fs.IntVar(&c.MonitorMinRows, "evaluator.monitor-min-rows", 30, "rows a window needs before alert rules read its drift")
	fs.DurationVar(&c.AlertInterval, "evaluator.alert-interval", 15*time.Second, "how often the leader evaluates the alert rules")
	fs.DurationVar(&c.NodeUsageInterval, "evaluator.node-usage-interval", 30*time.Second, "how often the leader records every node's capacity, allocation and GPU use (the console's node charts)")
	fs.DurationVar(&c.AlertResend, "evaluator.alert-resend", time.Minute, "how often a firing alert is sent again to Alertmanager")
	fs.StringVar(&c.Alertmanagers, "evaluator.alertmanagers", "", "comma-separated base URLs of Alertmanagers (API v2) that get firing and resolved alerts")
	fs.StringVar(&c.AlertWebhooks, "evaluator.alert-webhooks", "", "comma-separated URLs that get each firing and resolved alert as JSON")
	fs.StringVar(&c.ExternalURL, "evaluator.external-url", "", "the platform's URL, for the links in alerts")
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	switch {
	case c.LeaderTTL < time.Second:
		return fmt.Errorf("evaluator.leader-ttl: must be at least 1s, got %s", c.LeaderTTL)
	case c.Poll <= 0:
		return fmt.Errorf("evaluator.poll: must be positive, got %s", c.Poll)
	case c.AutoSweep <= 0:
		return fmt.Errorf("evaluator.auto-sweep: must be positive, got %s", c.AutoSweep)
	case c.MaxDatasetBytes <= 0 || c.MaxModelBytes <= 0:
		return fmt.Errorf("evaluator.max-dataset-bytes/max-model-bytes: must be positive")
	case c.ServedTimeout <= 0:
		return fmt.Errorf("evaluator.served-timeout: must be positive, got %s", c.ServedTimeout)
	case c.ServedBatchRows < 1 || c.ServedBatchRows > 1<<20:
		return fmt.Errorf("evaluator.served-batch-rows: must be between 1 and 1048576, got %d", c.ServedBatchRows)
	case c.MonitorWindow < time.Second || c.MonitorWindow%time.Second != 0:
		return fmt.Errorf("evaluator.monitor-window: must be a whole number of seconds, at least 1s, got %s", c.MonitorWindow)
	case c.MonitorHorizon < c.MonitorWindow:
		return fmt.Errorf("evaluator.monitor-horizon: must be at least evaluator.monitor-window (%s), got %s", c.MonitorWindow, c.MonitorHorizon)
	case c.MonitorRetention < c.MonitorHorizon:
		return fmt.Errorf("evaluator.monitor-retention: must be at least evaluator.monitor-horizon (%s), got %s", c.MonitorHorizon, c.MonitorRetention)
	case c.MonitorMaxSamples < 10 || c.MonitorMaxIndexed < 1 || c.MonitorMinRows < 1:
		return fmt.Errorf("evaluator.monitor-max-samples/max-indexed/min-rows: must be at least 10, 1 and 1")
	case c.AlertInterval <= 0 || c.AlertResend <= 0 || c.NodeUsageInterval <= 0:
		return fmt.Errorf("evaluator.alert-interval/alert-resend/node-usage-interval: must be positive")
	}
	for _, f := range []struct{ flag, v string }{{"evaluator.alertmanagers", c.Alertmanagers}, {"evaluator.alert-webhooks", c.AlertWebhooks}} {
		for _, u := range splitList(f.v) {
			p, err := url.Parse(u)
			if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
				return fmt.Errorf("%s: %q is not an http(s) URL", f.flag, u)
			}
		}
	}
	return nil
}

// DefaultConfig returns the flag defaults (for tests and embedding).
func DefaultConfig() Config {
	var c Config
	c.RegisterFlags(flag.NewFlagSet("", flag.ContinueOnError))
	return c
}

// splitList reads a comma-separated flag, skipping empty items.
func splitList(s string) []string {
	var out []string
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

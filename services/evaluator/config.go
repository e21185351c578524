package evaluator

import (
	"flag"
	"fmt"
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
	}
	return nil
}

// DefaultConfig returns the flag defaults (for tests and embedding).
func DefaultConfig() Config {
	var c Config
	c.RegisterFlags(flag.NewFlagSet("", flag.ContinueOnError))
	return c
}

package scheduler

import (
	"flag"
	"fmt"
	"time"
)

// Config configures the scheduler: jobs, queues and placement.
type Config struct {
	// LeaderTTL is the lease of the leader key: how long a crashed leader
	// keeps leadership before a standby takes over.
	LeaderTTL time.Duration `yaml:"leader_ttl"`
	// Scoring is "binpack" (best fit, the default) or "spread".
	Scoring string `yaml:"scoring"`
	// Resync is the period of a full reconcile (timeouts are noticed then).
	Resync time.Duration `yaml:"resync"`
	// MasterPortMin and MasterPortMax bound the rendezvous ports handed to
	// multi-worker jobs.
	MasterPortMin int `yaml:"master_port_min"`
	MasterPortMax int `yaml:"master_port_max"`
	// DefaultCPUMillis and DefaultMemoryBytes apply to a job that asks for
	// neither.
	DefaultCPUMillis   int64 `yaml:"default_cpu_millis"`
	DefaultMemoryBytes int64 `yaml:"default_memory_bytes"`
	// BatchOps caps the operations of one placement transaction (etcd
	// refuses more than its max-txn-ops, 128 by default).
	BatchOps int `yaml:"batch_ops"`
	// StartTimeout requeues a scheduled job none of whose workers reported
	// within it (an agent that never picked its assignment up).
	StartTimeout time.Duration `yaml:"start_timeout"`
}

// RegisterFlags registers the flags under the `scheduler.` prefix; it holds
// the only defaults.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.DurationVar(&c.LeaderTTL, "scheduler.leader-ttl", 5*time.Second, "lease TTL of the scheduler's leader key")
	fs.StringVar(&c.Scoring, "scheduler.scoring", "binpack", "node scoring: binpack (best fit) or spread")
	fs.DurationVar(&c.Resync, "scheduler.resync", time.Second, "period of a full reconcile")
	fs.IntVar(&c.MasterPortMin, "scheduler.master-port-min", 29500, "lowest rendezvous port for multi-worker jobs")
	fs.IntVar(&c.MasterPortMax, "scheduler.master-port-max", 29999, "highest rendezvous port for multi-worker jobs")
	fs.Int64Var(&c.DefaultCPUMillis, "scheduler.default-cpu-millis", 1000, "CPU of a worker that asks for none")
	fs.Int64Var(&c.DefaultMemoryBytes, "scheduler.default-memory-bytes", 1<<30, "memory of a worker that asks for none")
	fs.IntVar(&c.BatchOps, "scheduler.batch-ops", 64, "most etcd operations in one placement transaction")
	fs.DurationVar(&c.StartTimeout, "scheduler.start-timeout", 5*time.Minute, "requeue a scheduled job no worker reported on within this")
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	switch {
	case c.LeaderTTL < time.Second:
		return fmt.Errorf("scheduler.leader-ttl: must be at least 1s, got %s", c.LeaderTTL)
	case c.Scoring != "binpack" && c.Scoring != "spread":
		return fmt.Errorf("scheduler.scoring: must be binpack or spread, got %q", c.Scoring)
	case c.Resync <= 0:
		return fmt.Errorf("scheduler.resync: must be positive, got %s", c.Resync)
	case c.MasterPortMin < 1024 || c.MasterPortMax > 65535 || c.MasterPortMin > c.MasterPortMax:
		return fmt.Errorf("scheduler.master-port-min/max: need 1024 <= min <= max <= 65535, got %d-%d", c.MasterPortMin, c.MasterPortMax)
	case c.DefaultCPUMillis <= 0 || c.DefaultMemoryBytes <= 0:
		return fmt.Errorf("scheduler.default-cpu-millis/default-memory-bytes: must be positive")
	case c.BatchOps < 8 || c.BatchOps > 1024:
		return fmt.Errorf("scheduler.batch-ops: must be within 8 and 1024, got %d", c.BatchOps)
	case c.StartTimeout <= 0:
		return fmt.Errorf("scheduler.start-timeout: must be positive, got %s", c.StartTimeout)
	}
	return nil
}

// DefaultConfig returns the flag defaults (for tests and embedding).
func DefaultConfig() Config {
	var c Config
	c.RegisterFlags(flag.NewFlagSet("", flag.ContinueOnError))
	return c
}

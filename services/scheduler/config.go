package scheduler

import "flag"

// Config configures the scheduler: jobs, queues and placement.
// It has no settings yet.
type Config struct{}

// RegisterFlags registers the flags under the `scheduler.` prefix.
func (c *Config) RegisterFlags(fs *flag.FlagSet) { _ = fs }

// Validate checks the configuration.
func (c *Config) Validate() error { return nil }

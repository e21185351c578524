package traineragent

import "flag"

// Config configures the trainer agent: it runs training tasks and model-server replicas on its node.
// It has no settings yet.
type Config struct{}

// RegisterFlags registers the flags under the `traineragent.` prefix.
func (c *Config) RegisterFlags(fs *flag.FlagSet) { _ = fs }

// Validate checks the configuration.
func (c *Config) Validate() error { return nil }

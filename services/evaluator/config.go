package evaluator

import "flag"

// Config configures the evaluator: evaluations, experiments and promotion.
// It has no settings yet.
type Config struct{}

// RegisterFlags registers the flags under the `evaluator.` prefix.
func (c *Config) RegisterFlags(fs *flag.FlagSet) { _ = fs }

// Validate checks the configuration.
func (c *Config) Validate() error { return nil }

package gateway

import "flag"

// Config configures the inference gateway: deployments and the data plane.
// It has no settings yet.
type Config struct{}

// RegisterFlags registers the flags under the `gateway.` prefix.
func (c *Config) RegisterFlags(fs *flag.FlagSet) { _ = fs }

// Validate checks the configuration.
func (c *Config) Validate() error { return nil }

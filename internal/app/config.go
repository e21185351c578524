// Package app is the composition root: it wires the services of one
// process as a table of modules (telemetry, tls, etcd, nats, blobs,
// server, the five services, serve, http, membership), each with the one
// lifecycle Service (Start, Run, Drain, Stop). `bmaas up` runs every
// module with an embedded etcd and NATS; `bmaas serve` runs a subset
// against external ones.
//
// Modules start after their dependencies; each one's Run starts once its
// Start returned, and a Run that fails stops the process. On a signal
// the process stops within --shutdown.timeout (4.5 s), in two passes over
// the modules in reverse dependency order. The first drains: membership,
// the last to start, turns the gRPC health and /readyz NOT_SERVING,
// leaves membership and waits --shutdown.drain-delay; the trainer agent
// stops its tasks (SIGTERM, each task's grace, SIGKILL) while the
// process still serves, so their last checkpoints reach the registry. The
// second, module by module, ends the module's Run and stops it: the HTTP
// edge within --shutdown.http-timeout (2 s), the gRPC server gracefully
// within --grpc.shutdown-timeout and then at once, then the services, the
// server, NATS and etcd. A job whose termination_grace_seconds exceeds
// --trainer-agent.stop-grace extends the bound by the difference while
// it runs, so its grace is honoured (App.ShutdownBound).
package app

import (
	"errors"
	"flag"
	"fmt"
	"math"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/bmaas/bmaas/pkg/grpcsrv"
	"github.com/bmaas/bmaas/pkg/httpedge"
	"github.com/bmaas/bmaas/pkg/pki"
	"github.com/bmaas/bmaas/pkg/telemetry"
	"github.com/bmaas/bmaas/services/evaluator"
	"github.com/bmaas/bmaas/services/gateway"
	iamsvc "github.com/bmaas/bmaas/services/iam"
	"github.com/bmaas/bmaas/services/registry"
	"github.com/bmaas/bmaas/services/scheduler"
	"github.com/bmaas/bmaas/services/traineragent"
)

// Service targets.
const (
	TargetRegistry     = "registry"
	TargetScheduler    = "scheduler"
	TargetTrainerAgent = "trainer-agent"
	TargetEvaluator    = "evaluator"
	TargetGateway      = "gateway"
)

// AllTargets lists every service, in start order.
var AllTargets = []string{TargetRegistry, TargetScheduler, TargetTrainerAgent, TargetEvaluator, TargetGateway}

// Config is the whole process's configuration.
type Config struct {
	// Embedded runs etcd and NATS in the process (bmaas up).
	Embedded bool     `yaml:"embedded"`
	Targets  []string `yaml:"targets"`
	DataDir  string   `yaml:"data_dir"`
	HTTPAddr string   `yaml:"http_addr"`
	// EtcdEndpoints and NATSURL name external servers (bmaas serve).
	EtcdEndpoints []string `yaml:"etcd_endpoints"`
	NATSURL       string   `yaml:"nats_url"`
	// Etcd and NATS are the clients' credentials and TLS files.
	Etcd EtcdAuth `yaml:",inline"`
	NATS NATSAuth `yaml:",inline"`
	// NodeName identifies this process in membership (hostname by default).
	NodeName string `yaml:"node_name"`
	// AdvertiseHost is the host other processes reach this one at: its
	// gRPC address in membership and its replicas' endpoints. By default
	// the gRPC listen host, or this machine's first non-loopback address
	// when listening on every interface.
	AdvertiseHost string `yaml:"advertise_host"`
	// DevTLS (bmaas up --tls) makes a development CA and certificates in
	// <data-dir>/tls and serves TLS with them.
	DevTLS bool `yaml:"dev_tls"`
	// TLS are the process's certificate files (off when empty).
	TLS pki.Files `yaml:"tls"`
	// Auth (bmaas up --auth) asks a token on every call: the mesh's token
	// is generated into <data-dir>/secrets (as --auth.token-file would
	// name it) and a cluster-admin token for "admin" into
	// <data-dir>/secrets/admin.token.
	Auth bool `yaml:"auth"`
	// OIDC signs people in with an OpenID Connect provider.
	OIDC iamsvc.OIDCConfig `yaml:"oidc"`
	// RateLimit bounds each identity's calls to a process, a second (0:
	// no bound); RateBurst is how many may come at once (0: one second's
	// worth). They count the callers that tokens name (--auth).
	RateLimit float64 `yaml:"rate_limit"`
	RateBurst int     `yaml:"rate_burst"`
	// AuditRetention is how long the audit trail keeps a record (0: 90
	// days).
	AuditRetention time.Duration `yaml:"audit_retention"`
	// FastElection shortens the embedded etcd's heartbeat and election
	// timing (10 ms / 100 ms): for tests and demos on one machine.
	FastElection bool `yaml:"fast_election"`

	// Shutdown times the process's stop.
	Shutdown ShutdownConfig `yaml:"shutdown"`

	GRPC         grpcsrv.Config      `yaml:"grpc"`
	HTTP         httpedge.Config     `yaml:"http"`
	Telemetry    telemetry.Config    `yaml:"telemetry"`
	Registry     registry.Config     `yaml:"registry"`
	Scheduler    scheduler.Config    `yaml:"scheduler"`
	TrainerAgent traineragent.Config `yaml:"trainer_agent"`
	Evaluator    evaluator.Config    `yaml:"evaluator"`
	Gateway      gateway.Config      `yaml:"gateway"`
}

// RegisterFlags registers every flag of the process with its default.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.DataDir, "data-dir", "./bmaas-data", "directory for etcd, NATS and blob data")
	fs.StringVar(&c.HTTPAddr, "http-addr", "127.0.0.1:8080", "HTTP listen address (REST, /readyz, /metrics, /openapi.json)")
	fs.Var((*listFlag)(&c.EtcdEndpoints), "etcd-endpoints", "comma-separated external etcd endpoints (bmaas serve)")
	fs.StringVar(&c.NATSURL, "nats-url", "", "external NATS URL (bmaas serve)")
	c.TLS.RegisterFlags(fs)
	c.Etcd.RegisterFlags(fs)
	c.NATS.RegisterFlags(fs)
	fs.StringVar(&c.NodeName, "node-name", "", "name of this process in membership (default: host name)")
	fs.StringVar(&c.AdvertiseHost, "advertise-host", "", "host or IP other processes reach this one at (default: the gRPC listen host, or the first non-loopback address when it listens on all interfaces)")
	c.OIDC.RegisterFlags(fs)
	fs.Float64Var(&c.RateLimit, "auth.rate-limit", 0, "calls a second each identity may make to this process (0: no limit); over it, ResourceExhausted (HTTP 429 with Retry-After)")
	fs.IntVar(&c.RateBurst, "auth.rate-burst", 0, "calls an identity may make at once beyond --auth.rate-limit's pace (0: one second's worth)")
	fs.DurationVar(&c.AuditRetention, "audit.retention", 90*24*time.Hour, "how long the audit trail (JetStream BMAAS_AUDIT) keeps a record")
	fs.BoolVar(&c.FastElection, "embedded.fast-election", false, "embedded etcd with 10 ms heartbeats (tests, demos)")
	c.Shutdown.RegisterFlags(fs)
	c.GRPC.RegisterFlags(fs)
	c.HTTP.RegisterFlags(fs)
	c.Telemetry.RegisterFlags(fs)
	c.Registry.RegisterFlags(fs)
	c.Scheduler.RegisterFlags(fs)
	c.TrainerAgent.RegisterFlags(fs)
	c.Evaluator.RegisterFlags(fs)
	c.Gateway.RegisterFlags(fs)
}

// listFlag is a comma-separated list flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error { *l = splitList(s); return nil }

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// ParseTargets parses --target: a comma-separated list, or "all".
func ParseTargets(s string) ([]string, error) {
	var out []string
	for _, t := range splitList(s) {
		if t == "all" {
			out = append(out, AllTargets...)
			continue
		}
		if !slices.Contains(AllTargets, t) {
			return nil, fmt.Errorf("target: unknown service %q (want %s or all)", t, strings.Join(AllTargets, ", "))
		}
		if !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("target: name at least one service")
	}
	return out, nil
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	if len(c.Targets) == 0 {
		return errors.New("target: name at least one service")
	}
	if c.DataDir == "" {
		return errors.New("data-dir: is required")
	}
	if _, _, err := net.SplitHostPort(c.HTTPAddr); err != nil {
		return fmt.Errorf("http-addr %q: %w", c.HTTPAddr, err)
	}
	if h := c.AdvertiseHost; h != "" && (strings.ContainsAny(h, ":/ ") && net.ParseIP(h) == nil || isUnspecified(h)) {
		return fmt.Errorf("advertise-host %q: want a host name or an IP address others can reach, without a port", h)
	}
	if c.DevTLS && c.TLS.Enabled() {
		return errors.New("tls: --tls makes development certificates; it cannot go with --tls.cert-file")
	}
	if c.RateLimit < 0 || math.IsNaN(c.RateLimit) || math.IsInf(c.RateLimit, 0) {
		return fmt.Errorf("auth.rate-limit: want calls a second, 0 or more, got %v", c.RateLimit)
	}
	if c.RateBurst < 0 {
		return fmt.Errorf("auth.rate-burst: want 0 or more, got %d", c.RateBurst)
	}
	if c.AuditRetention < 0 || c.AuditRetention > 0 && c.AuditRetention < time.Minute {
		return fmt.Errorf("audit.retention: must be at least 1m, got %s", c.AuditRetention)
	}
	if c.Auth && !c.Embedded && c.GRPC.TokenFile == "" {
		return errors.New("auth: a cluster of several processes shares the mesh's token: give it with --auth.token-file")
	}
	if !c.Embedded {
		if len(c.EtcdEndpoints) == 0 {
			return errors.New("etcd-endpoints: required without the embedded etcd (bmaas up embeds one)")
		}
		if c.NATSURL == "" {
			return errors.New("nats-url: required without the embedded NATS (bmaas up embeds one)")
		}
	}
	for _, v := range []interface{ Validate() error }{&c.OIDC, &c.Shutdown, &c.TLS, &c.Etcd, &c.NATS, &c.GRPC, &c.HTTP, &c.Telemetry, &c.Registry, &c.Scheduler,
		&c.TrainerAgent, &c.Evaluator, &c.Gateway} {
		if err := v.Validate(); err != nil {
			return err
		}
	}
	return nil
}

// Has reports whether the process runs a service.
func (c *Config) Has(target string) bool { return slices.Contains(c.Targets, target) }

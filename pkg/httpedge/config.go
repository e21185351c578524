// Package httpedge guards a process's HTTP edge before any handler runs:
// the Host header must name this server (DNS rebinding), a browser may
// not drive the API from another site (cross-site request forgery, a
// CORS policy that is closed by default), a state-changing request must
// say it carries JSON (a cross-site form cannot), request bodies are
// bounded, and paths must be valid UTF-8. It also holds the server's
// timeouts. It knows nothing of a particular service: the caller says
// which routes stream raw uploads and which speak KServe v2.
package httpedge

import (
	"errors"
	"flag"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// Config configures the edge. Flags are under the `http.` prefix.
type Config struct {
	// AllowedHosts are Host header values accepted besides loopback
	// names, IP literals and this machine's own names: exact names, or
	// ".example.com" for every name under a domain, or "*" for any.
	AllowedHosts []string `yaml:"allowed_hosts"`
	// AllowedOrigins are the browser origins ("https://console.example.com")
	// that may call the API from another site: CORS answers them, and
	// their state-changing requests are not refused as cross-site.
	AllowedOrigins []string `yaml:"allowed_origins"`
	// MaxBodyBytes caps a JSON request body (raw uploads stream and have
	// their own limits; KServe v2 has --gateway.max-request-bytes).
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// ReadHeaderTimeout bounds reading a request's headers.
	ReadHeaderTimeout time.Duration `yaml:"read_header_timeout"`
	// ReadTimeout bounds reading a whole request, body included.
	ReadTimeout time.Duration `yaml:"read_timeout"`
	// UploadTimeout replaces ReadTimeout on the raw upload routes.
	UploadTimeout time.Duration `yaml:"upload_timeout"`
	// IdleTimeout closes a keep-alive connection idle this long.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
}

// RegisterFlags registers the flags with their defaults.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.Var((*list)(&c.AllowedHosts), "http.allowed-hosts",
		"Host header values accepted besides loopback names, IP addresses and this machine's names (comma-separated; .example.com for a domain, * for any)")
	fs.Var((*list)(&c.AllowedOrigins), "http.allowed-origins",
		"browser origins allowed to call the API from another site, e.g. https://console.example.com (comma-separated; none by default)")
	fs.Int64Var(&c.MaxBodyBytes, "http.max-body-bytes", 16<<20, "largest JSON request body")
	fs.DurationVar(&c.ReadHeaderTimeout, "http.read-header-timeout", 10*time.Second, "time to read a request's headers")
	fs.DurationVar(&c.ReadTimeout, "http.read-timeout", time.Minute, "time to read a whole request")
	fs.DurationVar(&c.UploadTimeout, "http.upload-timeout", time.Hour, "time to read a raw artifact or dataset upload")
	fs.DurationVar(&c.IdleTimeout, "http.idle-timeout", 2*time.Minute, "time a keep-alive connection may stay idle")
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	for _, h := range c.AllowedHosts {
		if h == "" || strings.ContainsAny(h, "/ \t") {
			return fmt.Errorf("http.allowed-hosts: %q is not a host name (want name, .domain or *)", h)
		}
	}
	for _, o := range c.AllowedOrigins {
		if err := checkOrigin(o); err != nil {
			return fmt.Errorf("http.allowed-origins: %w", err)
		}
	}
	switch {
	case c.MaxBodyBytes < 1<<10:
		return fmt.Errorf("http.max-body-bytes: must be at least 1 KiB, got %d", c.MaxBodyBytes)
	case c.ReadHeaderTimeout <= 0:
		return fmt.Errorf("http.read-header-timeout: must be positive, got %s", c.ReadHeaderTimeout)
	case c.ReadTimeout <= 0:
		return fmt.Errorf("http.read-timeout: must be positive, got %s", c.ReadTimeout)
	case c.UploadTimeout <= 0:
		return fmt.Errorf("http.upload-timeout: must be positive, got %s", c.UploadTimeout)
	case c.IdleTimeout <= 0:
		return fmt.Errorf("http.idle-timeout: must be positive, got %s", c.IdleTimeout)
	}
	return nil
}

// checkOrigin accepts "scheme://host[:port]" and nothing more.
func checkOrigin(o string) error {
	u, err := url.Parse(o)
	if err != nil {
		return fmt.Errorf("%q: %w", o, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Path != "" || u.RawQuery != "" || u.User != nil {
		return fmt.Errorf("%q: want scheme://host[:port], e.g. https://console.example.com", o)
	}
	return nil
}

// list is a comma-separated list flag.
type list []string

func (l *list) String() string { return strings.Join(*l, ",") }

func (l *list) Set(s string) error {
	*l = nil
	for p := range strings.SplitSeq(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			*l = append(*l, p)
		}
	}
	if len(*l) == 0 && strings.TrimSpace(s) != "" {
		return errors.New("empty list")
	}
	return nil
}

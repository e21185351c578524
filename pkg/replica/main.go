package replica

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/bmaas/bmaas/pkg/pki"
	"github.com/bmaas/bmaas/pkg/serving"
)

// Config is what the agent tells a replica process, in a file of the
// replica's own directory (mode 0600): everything a replica needs and
// nothing of the agent's.
type Config struct {
	ModelPath           string `json:"model_path"`
	Format              string `json:"format"`
	Name                string `json:"name"`
	Version             int64  `json:"version"`
	MaxBatchSize        int    `json:"max_batch_size,omitempty"`
	MaxQueueDelayMicros int64  `json:"max_queue_delay_micros,omitempty"`
	ListenHost          string `json:"listen_host"`
	Token               string `json:"token"`
	// Classes and Logits: what the model's output means (serving.Options).
	Classes []string `json:"classes,omitempty"`
	Logits  bool     `json:"logits,omitempty"`
	// TLS files, all three or none: the replica's certificate and key,
	// and the cluster CA its callers' certificates must come from. The
	// agent renews the certificate in place; the replica reloads it.
	TLSCert string `json:"tls_cert,omitempty"`
	TLSKey  string `json:"tls_key,omitempty"`
	TLSCA   string `json:"tls_ca,omitempty"`
	// ReadyFile is written once the ports serve.
	ReadyFile string `json:"ready_file"`
}

// Ready is the content of the ready file.
type Ready struct {
	GRPCPort int `json:"grpc_port"`
	LanePort int `json:"lane_port"`
	// MetricsPort serves GET /metrics.
	MetricsPort int `json:"metrics_port,omitempty"`
}

// ReadConfig reads a replica's configuration file.
func ReadConfig(path string) (Config, error) {
	var c Config
	b, err := os.ReadFile(path)
	if err != nil {
		return c, fmt.Errorf("replica config: %w", err)
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return c, fmt.Errorf("replica config %s: %w", path, err)
	}
	switch {
	case c.ModelPath == "" || c.Name == "" || c.Token == "" || c.ReadyFile == "":
		return c, fmt.Errorf("replica config %s: model_path, name, token and ready_file are required", path)
	case (c.TLSCert == "") != (c.TLSKey == "") || (c.TLSCert == "") != (c.TLSCA == ""):
		return c, fmt.Errorf("replica config %s: tls_cert, tls_key and tls_ca go together", path)
	}
	return c, nil
}

// Options are the replica's options for c.
func (c Config) Options() (Options, error) {
	o := Options{ModelPath: c.ModelPath, Format: c.Format, Name: c.Name, Version: c.Version, ListenHost: c.ListenHost, Token: c.Token,
		Classes: c.Classes, Logits: c.Logits,
		Batching: serving.Batching{MaxBatchSize: c.MaxBatchSize, MaxQueueDelay: time.Duration(c.MaxQueueDelayMicros) * time.Microsecond}}
	if c.TLSCert != "" {
		r, err := pki.NewReloader(pki.Files{CertFile: c.TLSCert, KeyFile: c.TLSKey, ClientCAFile: c.TLSCA})
		if err != nil {
			return o, err
		}
		o.TLS = r.ReplicaServerConfig(nil)
	}
	return o, nil
}

// Main runs the replica of the configuration file until ctx ends (the
// agent's SIGTERM), then drains it. It writes the ready file once the
// ports serve, and says what it does on log.
func Main(ctx context.Context, configPath string, log io.Writer) error {
	c, err := ReadConfig(configPath)
	if err != nil {
		return err
	}
	o, err := c.Options()
	if err != nil {
		return err
	}
	// The server's panics and slow drains go to the replica's log.
	o.Logger = slog.New(slog.NewTextHandler(log, &slog.HandlerOptions{Level: slog.LevelWarn}))
	r, err := Start(o)
	if err != nil {
		return err
	}
	g, l := r.Ports()
	b, _ := json.Marshal(Ready{GRPCPort: g, LanePort: l, MetricsPort: r.MetricsPort()})
	if err := pki.WriteFile(c.ReadyFile, b, 0o600); err != nil {
		sctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		r.Shutdown(sctx)
		return fmt.Errorf("ready file: %w", err)
	}
	_, _ = fmt.Fprintf(log, "replica of %s version %d serving: gRPC port %d, lane port %d, metrics port %d, pid %d, uid %d\n",
		c.Name, c.Version, g, l, r.MetricsPort(), os.Getpid(), os.Getuid())
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), DrainTimeout)
	defer cancel()
	r.Shutdown(sctx)
	_, _ = fmt.Fprintln(log, "replica drained")
	return nil
}

// ReadReady reads a ready file; os.ErrNotExist until the replica serves.
func ReadReady(path string) (Ready, error) {
	var r Ready
	b, err := os.ReadFile(path)
	if err != nil {
		return r, err
	}
	if err := json.Unmarshal(b, &r); err != nil || r.GRPCPort == 0 || r.LanePort == 0 {
		return r, errors.Join(errors.New("replica ready file: malformed"), err)
	}
	return r, nil
}

package replica

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	commonv1 "github.com/bmaas/bmaas/api/bmaas/common/v1"
	"github.com/bmaas/bmaas/pkg/runtimes"
	"github.com/bmaas/bmaas/pkg/serving"
)

// Contract is `bmaas replica` run as an external serving runtime's
// process: the replica's engine driven by the serving contract
// (pkg/runtimes) rather than by an agent's configuration file. Each field
// left empty takes the contract's environment variable.
type Contract struct {
	// ModelDir is the version (BMAAS_MODEL_DIR): the model file itself,
	// or a directory holding one file of the format (and, optionally,
	// signature.json, whose output labels and kind make a classifier's
	// answer "predictions" and "probabilities").
	ModelDir string
	// Format is serving.FormatONNX or serving.FormatNative.
	Format string
	// Name is the v2 model name (BMAAS_MODEL_NAME).
	Name string
	// Version is the version number (BMAAS_MODEL_VERSION).
	Version int64
	// GRPCPort is where KServe v2 gRPC is served (BMAAS_GRPC_PORT).
	GRPCPort int
	// Host is the address bound ("" for every interface).
	Host string
	// TokenEnv names the variable holding the bearer token every call but
	// the health service's must carry (BMAAS_TOKEN).
	TokenEnv string
}

// Options resolves c against the contract's environment (getenv) into
// the replica's options. BMAAS_PARAMS's max_batch_size and
// max_queue_delay_ms configure batching. Errors name the flag at fault.
func (c Contract) Options(getenv func(string) string) (Options, error) {
	or := func(v, env string) string {
		if v == "" {
			return getenv(env)
		}
		return v
	}
	c.ModelDir, c.Name = or(c.ModelDir, runtimes.EnvModelDir), or(c.Name, runtimes.EnvModelName)
	if c.TokenEnv == "" {
		c.TokenEnv = runtimes.EnvToken
	}
	var o Options
	if c.Version == 0 {
		if v := getenv(runtimes.EnvModelVersion); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return o, fmt.Errorf("--version: %s=%q is not a version number", runtimes.EnvModelVersion, v)
			}
			c.Version = n
		}
	}
	if c.GRPCPort == 0 {
		if v := getenv(runtimes.EnvGRPCPort); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil {
				return o, fmt.Errorf("--grpc-port: %s=%q is not a port", runtimes.EnvGRPCPort, v)
			}
			c.GRPCPort = n
		}
	}
	switch {
	case c.ModelDir == "":
		return o, fmt.Errorf("--model-dir (or %s) is required", runtimes.EnvModelDir)
	case c.Name == "":
		return o, fmt.Errorf("--name (or %s) is required", runtimes.EnvModelName)
	case c.GRPCPort <= 0 || c.GRPCPort > 65535:
		return o, fmt.Errorf("--grpc-port (or %s): a port from 1 to 65535 is required, got %d", runtimes.EnvGRPCPort, c.GRPCPort)
	case c.Format != serving.FormatONNX && c.Format != serving.FormatNative:
		return o, fmt.Errorf("--format: %q is not %s or %s", c.Format, serving.FormatONNX, serving.FormatNative)
	}
	token := getenv(c.TokenEnv)
	if token == "" {
		return o, fmt.Errorf("--token-env: %s is empty: the replica serves only callers with its bearer token", c.TokenEnv)
	}
	path, sigPath, err := modelFile(c.ModelDir, c.Format)
	if err != nil {
		return o, err
	}
	o = Options{ModelPath: path, Format: c.Format, Name: c.Name, Version: c.Version, ListenHost: c.Host, Token: token, GRPCPort: c.GRPCPort}
	if o.Classes, o.Logits, err = readClasses(sigPath); err != nil {
		return o, err
	}
	o.Batching, err = batchingOf(getenv(runtimes.EnvParams))
	return o, err
}

// modelFile finds the model of format in dir (a file, or a directory with
// one file of the format's extension) and where its signature would be.
func modelFile(dir, format string) (path, signature string, err error) {
	st, err := os.Stat(dir)
	if err != nil {
		return "", "", fmt.Errorf("--model-dir: %w", err)
	}
	if !st.IsDir() {
		return dir, filepath.Join(filepath.Dir(dir), "signature.json"), nil
	}
	ext := map[string]string{serving.FormatONNX: ".onnx", serving.FormatNative: ".bmaas"}[format]
	found, err := filepath.Glob(filepath.Join(dir, "*"+ext))
	if err != nil {
		return "", "", fmt.Errorf("--model-dir: %w", err)
	}
	if len(found) != 1 {
		return "", "", fmt.Errorf("--model-dir: %s holds %d %s files, want one", dir, len(found), ext)
	}
	return found[0], filepath.Join(dir, "signature.json"), nil
}

// readClasses reads a signature file (a bmaas.common.v1.Signature as
// JSON) beside the model: no classes when there is none.
func readClasses(path string) ([]string, bool, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("signature: %w", err)
	}
	sig := &commonv1.Signature{}
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(b, sig); err != nil {
		return nil, false, fmt.Errorf("signature %s: %w", path, err)
	}
	classes, logits := serving.ClassesOf(sig)
	return classes, logits, nil
}

// batchingOf reads max_batch_size and max_queue_delay_ms from the
// deployment's parameters (BMAAS_PARAMS, a JSON object of strings).
func batchingOf(params string) (serving.Batching, error) {
	var b serving.Batching
	if strings.TrimSpace(params) == "" {
		return b, nil
	}
	var p map[string]string
	if err := json.Unmarshal([]byte(params), &p); err != nil {
		return b, fmt.Errorf("%s: not a JSON object of strings: %w", runtimes.EnvParams, err)
	}
	if v, ok := p["max_batch_size"]; ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return b, fmt.Errorf("%s max_batch_size: %q is not a row count", runtimes.EnvParams, v)
		}
		b.MaxBatchSize = n
	}
	if v, ok := p["max_queue_delay_ms"]; ok {
		ms, err := strconv.ParseFloat(v, 64)
		if err != nil || ms < 0 {
			return b, fmt.Errorf("%s max_queue_delay_ms: %q is not a delay in milliseconds", runtimes.EnvParams, v)
		}
		b.MaxQueueDelay = time.Duration(ms * float64(time.Millisecond))
	}
	return b, nil
}

// ServeContract runs the replica c describes until ctx ends, then drains
// it; it says on log where it serves.
func ServeContract(ctx context.Context, c Contract, getenv func(string) string, log io.Writer) error {
	o, err := c.Options(getenv)
	if err != nil {
		return err
	}
	o.Logger = slog.New(slog.NewTextHandler(log, &slog.HandlerOptions{Level: slog.LevelWarn}))
	r, err := Start(o)
	if err != nil {
		return err
	}
	g, _ := r.Ports()
	_, _ = fmt.Fprintf(log, "replica of %s version %d (%s, %s) serving KServe v2 gRPC on port %d, max_batch_size %d, max_queue_delay %s, pid %d\n",
		o.Name, o.Version, o.Format, o.ModelPath, g, o.Batching.MaxBatchSize, o.Batching.MaxQueueDelay, os.Getpid())
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), DrainTimeout)
	defer cancel()
	r.Shutdown(sctx)
	_, _ = fmt.Fprintln(log, "replica drained")
	return nil
}

// Package telemetry builds the process's logger and its OpenTelemetry
// tracer provider (exporting over OTLP/gRPC when an endpoint is set).
package telemetry

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// Config configures logging and tracing.
type Config struct {
	LogLevel  string `yaml:"log_level"`
	LogFormat string `yaml:"log_format"`
	// OTLPEndpoint is host:port of an OTLP/gRPC collector; tracing is off
	// when empty.
	OTLPEndpoint string `yaml:"otlp_endpoint"`
	// OTLPInsecure disables TLS to the collector.
	OTLPInsecure bool `yaml:"otlp_insecure"`
	// SampleRatio is the fraction of root traces sampled.
	SampleRatio float64 `yaml:"sample_ratio"`
}

// RegisterFlags registers the flags with their defaults.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.LogLevel, "log.level", "info", "log level: debug, info, warn, error")
	fs.StringVar(&c.LogFormat, "log.format", "text", "log format: text or json")
	fs.StringVar(&c.OTLPEndpoint, "tracing.otlp-endpoint", "", "OTLP/gRPC collector host:port (tracing off when empty)")
	fs.BoolVar(&c.OTLPInsecure, "tracing.otlp-insecure", true, "connect to the collector without TLS")
	fs.Float64Var(&c.SampleRatio, "tracing.sample-ratio", 1, "fraction of root traces sampled")
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	if _, err := parseLevel(c.LogLevel); err != nil {
		return err
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		return fmt.Errorf("log.format: want text or json, got %q", c.LogFormat)
	}
	if c.SampleRatio < 0 || c.SampleRatio > 1 {
		return fmt.Errorf("tracing.sample-ratio: want 0..1, got %v", c.SampleRatio)
	}
	return nil
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(strings.ToUpper(s))); err != nil {
		return 0, fmt.Errorf("log.level: want debug, info, warn or error, got %q", s)
	}
	return l, nil
}

// NewLogger builds the process logger writing to w.
func (c *Config) NewLogger(w io.Writer) (*slog.Logger, error) {
	level, err := parseLevel(c.LogLevel)
	if err != nil {
		return nil, err
	}
	opts := &slog.HandlerOptions{Level: level}
	if c.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return slog.New(slog.NewTextHandler(w, opts)), nil
}

// NewTracerProvider returns a provider exporting to the configured
// collector, or a no-op provider; shutdown flushes spans.
func (c *Config) NewTracerProvider(ctx context.Context, service string) (trace.TracerProvider, func(context.Context) error, error) {
	if c.OTLPEndpoint == "" {
		return noop.NewTracerProvider(), func(context.Context) error { return nil }, nil
	}
	opts := []otlptracegrpc.Option{otlptracegrpc.WithEndpoint(c.OTLPEndpoint)}
	if c.OTLPInsecure {
		opts = append(opts, otlptracegrpc.WithInsecure())
	}
	exp, err := otlptracegrpc.New(ctx, opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("otlp exporter: %w", err)
	}
	res := resource.NewSchemaless(semconv.ServiceName(service))
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp),
		sdktrace.WithResource(res),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(c.SampleRatio))),
	)
	return tp, tp.Shutdown, nil
}

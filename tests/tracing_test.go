//go:build integration

package tests

import (
	"context"
	"net"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"

	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
	"github.com/bmaas/bmaas/internal/app"
	"github.com/bmaas/bmaas/tests/harness"
)

// collector is an OTLP/gRPC trace collector that keeps span names by
// service name.
type collector struct {
	coltracepb.UnimplementedTraceServiceServer
	mu    sync.Mutex
	spans map[string][]string
}

func (c *collector) Export(_ context.Context, req *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, rs := range req.ResourceSpans {
		svc := ""
		for _, a := range rs.GetResource().GetAttributes() {
			if a.Key == "service.name" {
				svc = a.GetValue().GetStringValue()
			}
		}
		for _, ss := range rs.ScopeSpans {
			for _, sp := range ss.Spans {
				c.spans[svc] = append(c.spans[svc], sp.Name)
			}
		}
	}
	return &coltracepb.ExportTraceServiceResponse{}, nil
}

// TestTracesReachTheCollector: with an OTLP endpoint, every gRPC call
// becomes a server span of the service "bmaas", exported when the
// process stops at the latest.
func TestTracesReachTheCollector(t *testing.T) {
	t.Parallel()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	col := &collector{spans: map[string][]string{}}
	srv := grpc.NewServer()
	coltracepb.RegisterTraceServiceServer(srv, col)
	go func() { _ = srv.Serve(lis) }()
	defer srv.Stop()

	c := harness.Start(t, func(cfg *app.Config) {
		cfg.Telemetry.OTLPEndpoint = lis.Addr().String()
		cfg.Telemetry.OTLPInsecure = true
		cfg.Telemetry.SampleRatio = 1
	})
	_, err = c.Registry.ListModels(t.Context(), &registryv1.ListModelsRequest{})
	require.NoError(t, err)
	require.NoError(t, c.Stop())

	col.mu.Lock()
	defer col.mu.Unlock()
	require.Contains(t, col.spans["bmaas"], "bmaas.registry.v1.RegistryService/ListModels", "spans: %v", col.spans)
}

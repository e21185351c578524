package mesh

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"

	agentv1 "github.com/bmaas/bmaas/api/bmaas/agent/v1"
	evaluatorv1 "github.com/bmaas/bmaas/api/bmaas/evaluator/v1"
	gatewayv1 "github.com/bmaas/bmaas/api/bmaas/gateway/v1"
	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
	schedulerv1 "github.com/bmaas/bmaas/api/bmaas/scheduler/v1"
	"github.com/bmaas/bmaas/api/inference"
)

// The services' names in membership (what Conn and the resolver take).
const (
	RegistryService     = "registry"
	SchedulerService    = "scheduler"
	TrainerAgentService = "trainer-agent"
	EvaluatorService    = "evaluator"
	GatewayService      = "gateway"
)

// roundRobin spreads calls over the replicas.
const roundRobin = `{"loadBalancingConfig": [{"round_robin": {}}]}`

// retryServiceConfig is the typed clients' gRPC service config: calls
// spread round-robin over the replicas, and a call a replica refused as
// UNAVAILABLE (it was stopping, or no replica was up yet) is tried again
// on another, up to four times in all, backing off from 100 ms to 1 s.
// UNAVAILABLE is the one code a server returns before it acts on a call,
// so a retry never repeats a change.
const retryServiceConfig = `{
  "loadBalancingConfig": [{"round_robin": {}}],
  "methodConfig": [{
    "name": [{}],
    "retryPolicy": {
      "maxAttempts": 4,
      "initialBackoff": "0.1s",
      "maxBackoff": "1s",
      "backoffMultiplier": 2,
      "retryableStatusCodes": ["UNAVAILABLE"]
    }
  }]
}`

// Registry is the registry's client.
func (d *Dialer) Registry() (registryv1.RegistryServiceClient, error) {
	c, err := d.conn(RegistryService, true)
	if err != nil {
		return nil, err
	}
	return registryv1.NewRegistryServiceClient(c), nil
}

// Scheduler is the scheduler's client.
func (d *Dialer) Scheduler() (schedulerv1.SchedulerServiceClient, error) {
	c, err := d.conn(SchedulerService, true)
	if err != nil {
		return nil, err
	}
	return schedulerv1.NewSchedulerServiceClient(c), nil
}

// TrainerAgent is a client of the trainer agents (any of them).
func (d *Dialer) TrainerAgent() (agentv1.AgentServiceClient, error) {
	c, err := d.conn(TrainerAgentService, true)
	if err != nil {
		return nil, err
	}
	return agentv1.NewAgentServiceClient(c), nil
}

// Evaluator is the evaluator's client.
func (d *Dialer) Evaluator() (evaluatorv1.EvaluatorServiceClient, error) {
	c, err := d.conn(EvaluatorService, true)
	if err != nil {
		return nil, err
	}
	return evaluatorv1.NewEvaluatorServiceClient(c), nil
}

// Gateway is the deployment API's client.
func (d *Dialer) Gateway() (gatewayv1.DeploymentServiceClient, error) {
	c, err := d.conn(GatewayService, true)
	if err != nil {
		return nil, err
	}
	return gatewayv1.NewDeploymentServiceClient(c), nil
}

// Inference is the gateway's KServe v2 data plane client.
func (d *Dialer) Inference() (inference.GRPCInferenceServiceClient, error) {
	c, err := d.conn(GatewayService, true)
	if err != nil {
		return nil, err
	}
	return inference.NewGRPCInferenceServiceClient(c), nil
}

// clientMetrics count and time the mesh's calls by service, method and
// code.
type clientMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// WithMetrics counts the dialer's calls in reg
// (bmaas_grpc_client_requests_total and
// bmaas_grpc_client_request_duration_seconds, by service, method and
// code); call it before the first Conn.
func (d *Dialer) WithMetrics(reg prometheus.Registerer) (*Dialer, error) {
	m := &clientMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bmaas_grpc_client_requests_total",
			Help: "Calls between services, by service, method and status code.",
		}, []string{"service", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "bmaas_grpc_client_request_duration_seconds",
			Help:    "Duration of calls between services (unary calls, and streams until they end).",
			Buckets: prometheus.DefBuckets,
		}, []string{"service", "method"}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.duration} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	d.met = m
	return d, nil
}

// interceptors are a connection's client interceptors for service.
func (m *clientMetrics) interceptors(service string) []grpc.DialOption {
	if m == nil {
		return nil
	}
	done := func(method string, start time.Time, err error) {
		m.requests.WithLabelValues(service, method, status.Code(err).String()).Inc()
		m.duration.WithLabelValues(service, method).Observe(time.Since(start).Seconds())
	}
	unary := func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker,
		opts ...grpc.CallOption) error {
		start := time.Now()
		err := invoker(ctx, method, req, reply, cc, opts...)
		done(method, start, err)
		return err
	}
	stream := func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer,
		opts ...grpc.CallOption) (grpc.ClientStream, error) {
		start := time.Now()
		s, err := streamer(ctx, desc, cc, method, opts...)
		if err != nil {
			done(method, start, err)
			return nil, err
		}
		return &countedStream{ClientStream: s, oneReply: !desc.ServerStreams, end: func(err error) { done(method, start, err) }}, nil
	}
	return []grpc.DialOption{grpc.WithChainUnaryInterceptor(unary), grpc.WithChainStreamInterceptor(stream)}
}

// countedStream reports a stream's end once: its status, io.EOF as OK,
// or the one reply of a client stream.
type countedStream struct {
	grpc.ClientStream
	oneReply bool
	end      func(error)
	ended    bool
}

func (s *countedStream) RecvMsg(m any) error {
	err := s.ClientStream.RecvMsg(m)
	if (err != nil || s.oneReply) && !s.ended {
		s.ended = true
		code := err
		if errors.Is(err, io.EOF) {
			code = nil
		}
		s.end(code)
	}
	return err
}

package gateway

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/bmaas/bmaas/pkg/telemetry"
)

// metrics count the calls the gateway forwards to replicas, by transport
// (the replica's inference lane, gRPC, or HTTP to a replica that speaks
// KServe v2 REST only) and outcome.
type metrics struct {
	laneOK, laneErr, grpcOK, grpcErr, httpOK, httpErr prometheus.Counter
	llm                                               *llmMetrics
}

func newMetrics(reg prometheus.Registerer) *metrics {
	vec := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "bmaas_gateway_replica_calls_total",
		Help: "Inference calls the gateway forwarded to replicas, by transport (lane, grpc or http) and outcome (ok or error).",
	}, []string{"transport", "outcome"})
	if reg != nil {
		vec = telemetry.Register(reg, vec)
	}
	return &metrics{laneOK: vec.WithLabelValues("lane", "ok"), laneErr: vec.WithLabelValues("lane", "error"),
		grpcOK: vec.WithLabelValues("grpc", "ok"), grpcErr: vec.WithLabelValues("grpc", "error"),
		httpOK: vec.WithLabelValues("http", "ok"), httpErr: vec.WithLabelValues("http", "error"), llm: newLLMMetrics(reg)}
}

// count records one forwarded call.
func (m *metrics) count(lane bool, err error) {
	switch {
	case lane && err == nil:
		m.laneOK.Inc()
	case lane:
		m.laneErr.Inc()
	case err == nil:
		m.grpcOK.Inc()
	default:
		m.grpcErr.Inc()
	}
}

// countHTTP records one call forwarded over HTTP (a bridged call).
func (m *metrics) countHTTP(err error) {
	if err == nil {
		m.httpOK.Inc()
	} else {
		m.httpErr.Inc()
	}
}

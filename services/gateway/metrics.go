package gateway

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics count the calls the gateway forwards to replicas, by transport
// (the replica's inference lane or gRPC) and outcome.
type metrics struct {
	laneOK, laneErr, grpcOK, grpcErr prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	vec := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "bmaas_gateway_replica_calls_total",
		Help: "Inference calls the gateway forwarded to replicas, by transport (lane or grpc) and outcome (ok or error).",
	}, []string{"transport", "outcome"})
	if reg != nil {
		if err := reg.Register(vec); err != nil {
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) {
				vec = are.ExistingCollector.(*prometheus.CounterVec)
			}
		}
	}
	return &metrics{laneOK: vec.WithLabelValues("lane", "ok"), laneErr: vec.WithLabelValues("lane", "error"),
		grpcOK: vec.WithLabelValues("grpc", "ok"), grpcErr: vec.WithLabelValues("grpc", "error")}
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

package scheduler

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics of the scheduler; the leader's gauges are zero on a standby.
type metrics struct {
	leader      prometheus.Gauge
	queue       prometheus.Gauge
	placements  prometheus.Counter
	preemptions prometheus.Counter
	latency     prometheus.Histogram
	reconcile   prometheus.Histogram
	failover    prometheus.Histogram
	transitions *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		leader: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "bmaas_scheduler_leader", Help: "1 while this replica leads the scheduler.",
		}),
		queue: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "bmaas_scheduler_queue_length", Help: "Jobs waiting to be placed (the leader's view).",
		}),
		placements: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "bmaas_scheduler_placements_total", Help: "Jobs placed on nodes.",
		}),
		preemptions: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "bmaas_scheduler_preemptions_total", Help: "Jobs preempted back to the queue.",
		}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "bmaas_scheduler_placement_latency_seconds", Help: "Time from a job entering the queue to its placement.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 18),
		}),
		reconcile: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "bmaas_scheduler_reconcile_seconds", Help: "Duration of one reconcile pass of the leader.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 18),
		}),
		failover: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "bmaas_scheduler_failover_seconds", Help: "Time from the previous leader key vanishing to the new leader's first reconcile.",
			Buckets: prometheus.ExponentialBuckets(0.01, 2, 14),
		}),
		transitions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bmaas_scheduler_job_transitions_total", Help: "Job state moves, by the state entered.",
		}, []string{"state"}),
	}
	for _, c := range []prometheus.Collector{m.leader, m.queue, m.placements, m.preemptions, m.latency, m.reconcile, m.failover, m.transitions} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("scheduler metrics: %w", err)
		}
	}
	return m, nil
}

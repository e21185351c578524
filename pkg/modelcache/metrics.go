package modelcache

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the cache's Prometheus metrics.
type metrics struct {
	hits, misses, evictions, downloaded, downloadSeconds prometheus.Counter
}

// newMetrics makes the metrics and registers them on reg (when set);
// bytes reads the cache's size for the gauge.
func newMetrics(reg prometheus.Registerer, bytes func() int64) (*metrics, error) {
	m := &metrics{
		hits: prometheus.NewCounter(prometheus.CounterOpts{Name: "bmaas_model_cache_hits_total",
			Help: "Gets of the node's model cache served without downloading (waiting on another Get's download included)."}),
		misses: prometheus.NewCounter(prometheus.CounterOpts{Name: "bmaas_model_cache_misses_total",
			Help: "Gets of the node's model cache that downloaded the artifact."}),
		evictions: prometheus.NewCounter(prometheus.CounterOpts{Name: "bmaas_model_cache_evictions_total",
			Help: "Entries evicted from the node's model cache (least recently used, held by no task)."}),
		downloaded: prometheus.NewCounter(prometheus.CounterOpts{Name: "bmaas_model_cache_download_bytes_total",
			Help: "Bytes written by the node's model cache downloads, discarded ones included."}),
		downloadSeconds: prometheus.NewCounter(prometheus.CounterOpts{Name: "bmaas_model_cache_download_seconds_total",
			Help: "Seconds the node's model cache spent downloading (fetching, hashing, writing and syncing), discarded downloads included."}),
	}
	if reg == nil {
		return m, nil
	}
	size := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "bmaas_model_cache_bytes",
		Help: "Bytes the node's model cache entries hold (artifacts and unpacked trees)."},
		func() float64 { return float64(bytes()) })
	for _, c := range []prometheus.Collector{m.hits, m.misses, m.evictions, m.downloaded, m.downloadSeconds, size} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("modelcache: register metrics: %w", err)
		}
	}
	return m, nil
}

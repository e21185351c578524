package gpu

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// Collector exports each GPU's utilisation and memory in use, read from
// the source at every scrape.
type Collector struct {
	src     Source
	devices []Device
	util    *prometheus.Desc
	mem     *prometheus.Desc
	total   *prometheus.Desc
}

// NewCollector returns a collector for devices read from src on node.
func NewCollector(src Source, node string, devices []Device) *Collector {
	labels := []string{"index", "uuid", "model"}
	constant := prometheus.Labels{"node": node}
	return &Collector{
		src: src, devices: devices,
		util: prometheus.NewDesc("bmaas_gpu_utilization_ratio", "Fraction of time a kernel ran on the GPU over the last sample period.",
			labels, constant),
		mem:   prometheus.NewDesc("bmaas_gpu_memory_used_bytes", "GPU memory in use.", labels, constant),
		total: prometheus.NewDesc("bmaas_gpu_memory_total_bytes", "GPU memory in total.", labels, constant),
	}
}

// Describe sends the metric descriptions.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.util
	ch <- c.mem
	ch <- c.total
}

// Collect reads every GPU; a GPU that cannot be read is skipped.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	for _, d := range c.devices {
		lv := []string{strconv.Itoa(d.Index), d.UUID, d.Model}
		ch <- prometheus.MustNewConstMetric(c.total, prometheus.GaugeValue, float64(d.MemoryBytes), lv...)
		u, err := c.src.Usage(d.Index)
		if err != nil {
			continue
		}
		ch <- prometheus.MustNewConstMetric(c.util, prometheus.GaugeValue, u.Utilization, lv...)
		ch <- prometheus.MustNewConstMetric(c.mem, prometheus.GaugeValue, float64(u.MemoryUsedBytes), lv...)
	}
}

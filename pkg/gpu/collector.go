package gpu

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// Collector exports each GPU's utilisation and memory in use, read from
// the source at every scrape: under bmaas_gpu_* names (labelled with the
// index, UUID and model) and under the names Triton uses (nv_gpu_*,
// labelled with gpu_uuid), both with the node. When the source lists
// processes and an owner is set, it exports the GPU memory each job's
// processes hold, per GPU.
type Collector struct {
	src     Source
	devices []Device
	owner   Owner
	util    *prometheus.Desc
	mem     *prometheus.Desc
	total   *prometheus.Desc
	nvUtil  *prometheus.Desc
	nvUsed  *prometheus.Desc
	nvTotal *prometheus.Desc
	task    *prometheus.Desc
}

// NewCollector returns a collector for devices read from src on node.
func NewCollector(src Source, node string, devices []Device) *Collector {
	labels := []string{"index", "uuid", "model"}
	constant := prometheus.Labels{"node": node}
	nv := []string{"gpu_uuid"}
	return &Collector{
		src: src, devices: devices,
		util: prometheus.NewDesc("bmaas_gpu_utilization_ratio", "Fraction of time a kernel ran on the GPU over the last sample period.",
			labels, constant),
		mem:     prometheus.NewDesc("bmaas_gpu_memory_used_bytes", "GPU memory in use.", labels, constant),
		total:   prometheus.NewDesc("bmaas_gpu_memory_total_bytes", "GPU memory in total.", labels, constant),
		nvUtil:  prometheus.NewDesc("nv_gpu_utilization", "GPU utilization rate [0.0 - 1.0).", nv, constant),
		nvUsed:  prometheus.NewDesc("nv_gpu_memory_used_bytes", "GPU used memory, in bytes.", nv, constant),
		nvTotal: prometheus.NewDesc("nv_gpu_memory_total_bytes", "GPU total memory, in bytes.", nv, constant),
		task: prometheus.NewDesc("bmaas_gpu_task_memory_used_bytes", "GPU memory the processes of a job's task hold on the GPU, in bytes.",
			[]string{"gpu_uuid", "job"}, constant),
	}
}

// WithOwner sets how a process on a GPU is traced to its job, and returns c.
func (c *Collector) WithOwner(o Owner) *Collector {
	c.owner = o
	return c
}

// Describe sends the metric descriptions.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.util, c.mem, c.total, c.nvUtil, c.nvUsed, c.nvTotal, c.task} {
		ch <- d
	}
}

// Collect reads every GPU; a GPU that cannot be read is skipped.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	for _, d := range c.devices {
		lv := []string{strconv.Itoa(d.Index), d.UUID, d.Model}
		ch <- prometheus.MustNewConstMetric(c.total, prometheus.GaugeValue, float64(d.MemoryBytes), lv...)
		ch <- prometheus.MustNewConstMetric(c.nvTotal, prometheus.GaugeValue, float64(d.MemoryBytes), d.UUID)
		c.collectTasks(ch, d)
		u, err := c.src.Usage(d.Index)
		if err != nil {
			continue
		}
		ch <- prometheus.MustNewConstMetric(c.util, prometheus.GaugeValue, u.Utilization, lv...)
		ch <- prometheus.MustNewConstMetric(c.mem, prometheus.GaugeValue, float64(u.MemoryUsedBytes), lv...)
		ch <- prometheus.MustNewConstMetric(c.nvUtil, prometheus.GaugeValue, u.Utilization, d.UUID)
		ch <- prometheus.MustNewConstMetric(c.nvUsed, prometheus.GaugeValue, float64(u.MemoryUsedBytes), d.UUID)
	}
}

// collectTasks sums the memory of d's processes per job.
func (c *Collector) collectTasks(ch chan<- prometheus.Metric, d Device) {
	ps, ok := c.src.(ProcessSource)
	if !ok || c.owner == nil {
		return
	}
	procs, err := ps.Processes(d.Index)
	if err != nil {
		return
	}
	perJob := map[string]int64{}
	for _, p := range procs {
		if job, ok := c.owner(p.PID); ok {
			perJob[job] += p.MemoryBytes
		}
	}
	for job, b := range perJob {
		ch <- prometheus.MustNewConstMetric(c.task, prometheus.GaugeValue, float64(b), d.UUID, job)
	}
}

package scheduler

import (
	"cmp"
	"slices"
	"testing"
	"time"

	"github.com/bmaas/bmaas/services/scheduler/placement"
)

// BenchmarkPlacePure places the whole queue of 10,000 jobs on 5,000 nodes
// per iteration, in priority order, preemption on, as one leader pass
// does; decisions/s counts every job decided (placed or not).
func BenchmarkPlacePure(b *testing.B) {
	nodes := genNodes()
	for _, tc := range []struct {
		name     string
		scale    int64
		strategy placement.Strategy
	}{
		{"binpack-fits", 1, placement.BinPack},
		{"spread-fits", 1, placement.Spread},
		{"binpack-saturated", 16, placement.BinPack},
	} {
		b.Run(tc.name, func(b *testing.B) {
			reqs := toRequests(genJobs(tc.scale))
			slices.SortStableFunc(reqs, func(a, b placement.Request) int { return cmp.Compare(b.Priority, a.Priority) })
			b.ReportAllocs()
			var placed, victims int
			var elapsed time.Duration
			for b.Loop() {
				pn := toPlacement(nodes)
				start := time.Now()
				c := placement.NewCluster(pn, tc.strategy)
				placed, victims = 0, 0
				for i := range reqs {
					r := reqs[i]
					res := c.Place(&r, true)
					if len(res.Allocs) > 0 {
						placed++
					}
					victims += len(res.Victims)
				}
				elapsed += time.Since(start)
			}
			b.ReportMetric(float64(numJobs*b.N)/elapsed.Seconds(), "decisions/s")
			b.ReportMetric(float64(placed), "placed")
			b.ReportMetric(float64(victims), "preempted")
		})
	}
}

// BenchmarkPlacePreempt fills the fleet with 10,000 preemptible jobs of
// priority 0, then times placing 10,000 jobs of priority 1: those that do
// not fit preempt.
func BenchmarkPlacePreempt(b *testing.B) {
	nodes := genNodes()
	low := toRequests(genJobs(16))
	high := toRequests(genJobs(8))
	for i := range low {
		low[i].Priority, low[i].Preemptible = 0, true
		high[i].Job, high[i].Priority, high[i].Preemptible = "hi-"+high[i].Job, 1, false
	}
	b.ReportAllocs()
	var placed, victims int
	var elapsed time.Duration
	for b.Loop() {
		c := placement.NewCluster(toPlacement(nodes), placement.BinPack)
		for i := range low {
			r := low[i]
			c.Place(&r, false)
		}
		placed, victims = 0, 0
		start := time.Now()
		for i := range high {
			r := high[i]
			res := c.Place(&r, true)
			if len(res.Allocs) > 0 {
				placed++
			}
			victims += len(res.Victims)
		}
		elapsed += time.Since(start)
	}
	b.ReportMetric(float64(numJobs*b.N)/elapsed.Seconds(), "decisions/s")
	b.ReportMetric(float64(placed), "placed")
	b.ReportMetric(float64(victims), "preempted")
}

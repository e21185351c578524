package scheduler

import (
	"cmp"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/bmaas/bmaas/services/scheduler/fairshare"
	"github.com/bmaas/bmaas/services/scheduler/placement"
)

// BenchmarkFairShare places the same queue of 10,000 jobs on 5,000 nodes
// per iteration as BenchmarkPlacePure, through a fair-share pass
// (services/scheduler/fairshare): the jobs of one project without quotas,
// and spread over 50 projects, each with a fiftieth of the cluster as its
// quota. decisions/s counts every job decided; "pure" is the plain
// priority-order pass of BenchmarkPlacePure in the same run.
func BenchmarkFairShare(b *testing.B) {
	nodes := genNodes()
	for _, scale := range []int64{1, 16} {
		reqs := toRequests(genJobs(scale))
		var capacity fairshare.Vec
		for _, n := range toPlacement(nodes) {
			capacity.CPU += n.CPU
			capacity.Memory += n.Memory
			capacity.GPUs += int64(len(n.GPUs))
		}
		for _, tc := range []struct {
			name     string
			projects int
			quotas   bool
		}{{"pure", 0, false}, {"1-project", 1, false}, {"50-projects-quotas", 50, true}} {
			b.Run(fmt.Sprintf("scale-%d/%s", scale, tc.name), func(b *testing.B) {
				quotas := map[string]fairshare.Quota{}
				if tc.quotas {
					for p := range tc.projects {
						quotas[fmt.Sprintf("p%02d", p)] = fairshare.Quota{Vec: fairshare.Vec{GPUs: capacity.GPUs / 50,
							CPU: capacity.CPU / 50, Memory: capacity.Memory / 50}}
					}
				}
				items := make([]*fairshare.Item, len(reqs))
				var placed int
				var elapsed time.Duration
				for b.Loop() {
					for i := range reqs {
						items[i] = &fairshare.Item{Req: reqs[i], Project: fmt.Sprintf("p%02d", i%max(tc.projects, 1)), Seq: int64(i)}
					}
					c := placement.NewCluster(toPlacement(nodes), placement.BinPack)
					placed = 0
					start := time.Now()
					if tc.projects == 0 {
						sortByPriority(items)
						for _, it := range items {
							if res := c.Place(&it.Req, true); len(res.Allocs) > 0 {
								placed++
							}
						}
					} else {
						fairshare.NewPass(c, capacity, quotas).Run(items, func(d fairshare.Decision) {
							if len(d.Result.Allocs) > 0 {
								placed++
							}
						})
					}
					elapsed += time.Since(start)
				}
				b.ReportMetric(float64(numJobs*b.N)/elapsed.Seconds(), "decisions/s")
				b.ReportMetric(float64(placed), "placed")
			})
		}
	}
}

func sortByPriority(items []*fairshare.Item) {
	slices.SortStableFunc(items, func(a, b *fairshare.Item) int { return cmp.Compare(b.Req.Priority, a.Req.Priority) })
}

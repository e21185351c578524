package fairshare

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/bmaas/bmaas/services/scheduler/placement"
)

// gpuNodes are n nodes of 8 GPUs, 64 cores, 512 GiB.
func gpuNodes(n int) ([]placement.Node, Vec) {
	nodes := make([]placement.Node, n)
	var capacity Vec
	for i := range nodes {
		nodes[i] = placement.Node{Name: fmt.Sprintf("n%d", i), CPU: 64000, Memory: 512 << 30}
		for g := range 8 {
			nodes[i].GPUs = append(nodes[i].GPUs, placement.GPU{Index: int32(g), Memory: 80 << 30})
		}
		capacity = capacity.add(Vec{GPUs: 8, GPUMemory: 8 * 80 << 30, CPU: 64000, Memory: 512 << 30})
	}
	return nodes, capacity
}

// sim is a cluster run pass after pass, as the leader does: what a pass
// places keeps running; reclaimed and preempted jobs go back to the
// queue.
type sim struct {
	nodes    []placement.Node
	capacity Vec
	quotas   map[string]Quota
	running  map[string]runningJob
	queue    []*Item
	seq      int64
	reasons  map[string]string
}

type runningJob struct {
	it     *Item
	allocs []placement.Alloc
}

func newSim(nodes int, quotas map[string]Quota) *sim {
	n, c := gpuNodes(nodes)
	return &sim{nodes: n, capacity: c, quotas: quotas, running: map[string]runningJob{}, reasons: map[string]string{}}
}

func (s *sim) submit(project string, n, gpus, workers int, prio int32) []string {
	var ids []string
	for range n {
		s.seq++
		id := fmt.Sprintf("%s-%d", project, s.seq)
		s.queue = append(s.queue, &Item{Project: project, Seq: s.seq,
			Req: placement.Request{Job: id, Priority: prio, Workers: workers, GPUs: gpus, CPU: 1000, Memory: 1 << 30}})
		ids = append(ids, id)
	}
	return ids
}

func (s *sim) pass() {
	nodes := make([]placement.Node, len(s.nodes))
	copy(nodes, s.nodes)
	c := placement.NewCluster(nodes, placement.BinPack)
	p := NewPass(c, s.capacity, s.quotas)
	for id, rj := range s.running {
		c.Bind(id, rj.it.Req.Priority, rj.it.Req.Preemptible, rj.allocs)
		p.Running(rj.it.Project, id, Need(&rj.it.Req), rj.it.Seq)
	}
	var waiting []*Item
	p.Run(s.queue, func(d Decision) {
		for _, v := range d.Result.Victims {
			waiting = append(waiting, s.running[v].it)
			delete(s.running, v)
		}
		if len(d.Result.Allocs) == 0 {
			s.reasons[d.Item.Req.Job] = d.Result.Reason
			waiting = append(waiting, d.Item)
			return
		}
		s.running[d.Item.Req.Job] = runningJob{it: d.Item, allocs: d.Result.Allocs}
	})
	s.queue = waiting
}

func (s *sim) finish(id string) { delete(s.running, id) }

func (s *sim) gpus(project string) int {
	n := 0
	for _, rj := range s.running {
		if rj.it.Project == project {
			n += rj.it.Req.GPUs * rj.it.Req.Workers
		}
	}
	return n
}

// Two projects without quotas submit four times the cluster's GPUs:
// each pass gives them equal shares, and as jobs finish they keep them.
func TestTwoProjectsConvergeToFairShares(t *testing.T) {
	s := newSim(2, nil) // 16 GPUs
	s.submit("vision", 32, 1, 1, 0)
	s.submit("nlp", 32, 1, 1, 0)
	s.pass()
	require.Equal(t, 8, s.gpus("vision"))
	require.Equal(t, 8, s.gpus("nlp"))
	// vision's jobs end first: nlp does not take over its share, as the
	// queue order would have it without fair sharing.
	for round := range 4 {
		for id, rj := range s.running {
			if rj.it.Project == "vision" || round%2 == 1 {
				s.finish(id)
				break
			}
		}
		s.pass()
		require.InDelta(t, s.gpus("vision"), s.gpus("nlp"), 1, "round %d", round)
	}
}

// A project borrows the idle GPUs; its owner submitting takes them back
// in one pass, and the borrower waits saying why.
func TestBorrowedCapacityIsReclaimedInOnePass(t *testing.T) {
	s := newSim(2, map[string]Quota{"vision": {Vec: Vec{GPUs: 8}}, "nlp": {Vec: Vec{GPUs: 8}}})
	s.submit("nlp", 16, 1, 1, 0)
	s.pass()
	require.Equal(t, 16, s.gpus("nlp"), "nlp borrows vision's idle GPUs")
	s.submit("vision", 8, 1, 1, 0)
	s.pass()
	require.Equal(t, 8, s.gpus("vision"), "vision's quota is back within one pass")
	require.Equal(t, 8, s.gpus("nlp"))
	s.pass() // the reclaimed jobs are decided again
	var reason string
	for _, it := range s.queue {
		if it.Project == "nlp" {
			reason = s.reasons[it.Req.Job]
		}
	}
	require.Equal(t, "over quota: project nlp uses 8 of 8 GPUs (waiting for idle capacity to borrow)", reason)
	// Within its quota a project is never reclaimed: vision submitting
	// more only borrows what is idle (nothing).
	s.submit("vision", 4, 1, 1, 0)
	s.pass()
	require.Equal(t, 8, s.gpus("nlp"))
}

// A project without a quota only borrows; concurrent jobs are limited.
func TestNoQuotaBorrowsAndJobLimit(t *testing.T) {
	s := newSim(1, map[string]Quota{"vision": {Vec: Vec{GPUs: 4}, Jobs: 2}})
	s.submit("default", 8, 1, 1, 0)
	s.pass()
	require.Equal(t, 8, s.gpus("default"))
	s.submit("vision", 3, 1, 1, 0)
	s.pass()
	require.Equal(t, 2, s.gpus("vision"), "two jobs at most")
	require.Equal(t, 6, s.gpus("default"), "reclaimed only what vision could run")
	for _, it := range s.queue {
		if it.Project == "vision" {
			require.Equal(t, "over quota: project vision runs 2 of 2 jobs", s.reasons[it.Req.Job])
		}
	}
}

// A high-priority gang waits for room while single-GPU jobs of lower
// priority keep coming as others end: the room it needs is held, so it
// runs once enough has ended. Placing the queue in plain priority order
// with backfill (the scheduler before fair sharing) starves it.
func TestGangIsNotStarvedBySmallJobs(t *testing.T) {
	for _, reserve := range []bool{true, false} {
		s := newSim(2, nil)
		small := s.submit("nlp", 16, 1, 1, 0)
		s.pass()
		gang := s.submit("vision", 1, 4, 2, 5)[0] // 2 workers x 4 GPUs
		ran, held := false, false
		for i := range 16 {
			s.finish(small[i])                                    // one small job ends...
			small = append(small, s.submit("nlp", 1, 1, 1, 0)...) // ...and another comes
			if reserve {
				s.pass()
			} else {
				s.backfill()
			}
			if _, ok := s.running[gang]; ok {
				ran = true
				break
			}
			held = held || strings.HasPrefix(s.reasonsOfProject("nlp"), "Waiting for capacity: room held for job "+gang)
		}
		require.Equal(t, reserve, ran, "reserve %v", reserve)
		require.Equal(t, reserve, held, "the small jobs say the room is held")
	}
}

func (s *sim) reasonsOfProject(project string) string {
	for _, it := range s.queue {
		if it.Project == project {
			return s.reasons[it.Req.Job]
		}
	}
	return ""
}

// backfill is a pass as the scheduler placed before: priority order,
// each job placed where it fits, nothing held.
func (s *sim) backfill() {
	c := placement.NewCluster(append([]placement.Node(nil), s.nodes...), placement.BinPack)
	for id, rj := range s.running {
		c.Bind(id, rj.it.Req.Priority, false, rj.allocs)
	}
	var waiting []*Item
	for _, it := range s.queue {
		if res := c.Place(&it.Req, true); len(res.Allocs) > 0 {
			s.running[it.Req.Job] = runningJob{it: it, allocs: res.Allocs}
		} else {
			waiting = append(waiting, it)
		}
	}
	s.queue = waiting
}

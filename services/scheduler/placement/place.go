package placement

import (
	"cmp"
	"math/bits"
	"slices"
)

// Place places r, evicting lower-priority preemptible jobs when preempt is
// true and nothing else makes room. When it succeeds the allocs are taken
// from the cluster and the victims released; otherwise nothing changes.
func (c *Cluster) Place(r *Request, preempt bool) Result {
	if r.Workers < 1 {
		r.Workers = 1
	}
	model := lower(r.GPUModel)
	if allocs, ok := c.tryPlace(r, model); ok {
		return Result{Allocs: c.commit(r, allocs)}
	}
	if reason, never := c.explain(r, model); never {
		return Result{Reason: reason, Unschedulable: true}
	} else if !preempt {
		return Result{Reason: reason}
	} else if victims, allocs, ok := c.preempt(r, model); ok {
		return Result{Allocs: c.commit(r, allocs), Victims: victims}
	} else {
		return Result{Reason: reason}
	}
}

// commit records r as running on allocs (already taken).
func (c *Cluster) commit(r *Request, allocs []Alloc) []Alloc {
	out := groupByNode(slices.Clone(allocs))
	c.seq++
	c.running[r.Job] = &running{job: r.Job, priority: r.Priority, preemptible: r.Preemptible, seq: c.seq, allocs: out}
	return out
}

// tryPlace allocates every worker of r on free resources, or none. On
// success the allocs are taken and returned in c.scratch.
func (c *Cluster) tryPlace(r *Request, model string) ([]Alloc, bool) {
	c.scratch = c.scratch[:0]
	for range r.Workers {
		best, bestScore := -1, 0.0
		var bestGPUs uint64
		for i := range c.Nodes {
			n := &c.Nodes[i]
			if n.freeCPU < r.CPU || n.freeMem < r.Memory || !static(n, r) {
				continue
			}
			var gpus uint64
			if r.GPUs > 0 {
				gpus = pickGPUs(n, n.freeGPUs, r.GPUs, model)
				if gpus == 0 {
					continue
				}
			}
			s := c.score(n, r)
			if best < 0 || s < bestScore {
				best, bestScore, bestGPUs = i, s, gpus
			}
		}
		if best < 0 {
			for _, a := range c.scratch {
				c.release(a)
			}
			return nil, false
		}
		a := Alloc{Node: best, CPU: r.CPU, Memory: r.Memory, GPUs: bestGPUs}
		c.take(a)
		c.scratch = append(c.scratch, a)
	}
	return c.scratch, true
}

// static reports whether node n may ever run r: pool and node selector.
func static(n *Node, r *Request) bool {
	if r.Pool != "" && n.Pool != r.Pool {
		return false
	}
	for k, v := range r.Selector {
		if got, ok := n.Labels[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// pickGPUs returns the lowest `want` positions of free whose model matches
// (a case-insensitive substring: "a100" matches "NVIDIA A100-SXM4-80GB"),
// or 0 when there are not enough.
func pickGPUs(n *Node, free uint64, want int, model string) uint64 {
	if model != "" {
		free &= modelMask(n, model)
	}
	if bits.OnesCount64(free) < want {
		return 0
	}
	var out uint64
	for ; want > 0; want-- {
		low := free & -free
		out |= low
		free &^= low
	}
	return out
}

func modelMask(n *Node, model string) uint64 {
	var m uint64
	for i, got := range n.models {
		if contains(got, model) {
			m |= 1 << i
		}
	}
	return m
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

// score is lower for a better node: the room left after placing one
// worker of r (bin packing) or its opposite (spread). A job without GPUs
// is steered away from GPU nodes either way.
func (c *Cluster) score(n *Node, r *Request) float64 {
	left := frac(n.freeCPU-r.CPU, n.CPU) + frac(n.freeMem-r.Memory, n.Memory)
	if len(n.GPUs) > 0 {
		left += 2 * frac(int64(bits.OnesCount64(n.freeGPUs)-r.GPUs), int64(len(n.GPUs)))
	}
	if c.Strategy == Spread {
		left = -left
	}
	if r.GPUs == 0 && len(n.GPUs) > 0 {
		left += 10
	}
	return left
}

func frac(a, b int64) float64 {
	if b <= 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// preempt evicts lower-priority preemptible jobs, the lowest priority and
// the newest first, until r fits; then gives back every victim r can do
// without. It reports the victims and r's allocs, or changes nothing.
func (c *Cluster) preempt(r *Request, model string) ([]string, []Alloc, bool) {
	var cands []*running
	for _, j := range c.running {
		if j.preemptible && j.priority < r.Priority && c.touchesEligible(j, r) {
			cands = append(cands, j)
		}
	}
	if len(cands) == 0 {
		return nil, nil, false
	}
	slices.SortFunc(cands, func(a, b *running) int {
		return cmp.Or(cmp.Compare(a.priority, b.priority), cmp.Compare(b.seq, a.seq))
	})
	evicted := 0
	fits := false
	for _, j := range cands {
		c.evict(j)
		evicted++
		if allocs, ok := c.tryPlace(r, model); ok {
			for _, a := range allocs {
				c.release(a)
			}
			fits = true
			break
		}
	}
	if !fits {
		for _, j := range cands[:evicted] {
			c.restore(j)
		}
		return nil, nil, false
	}
	// Give back victims that are not needed, the most valuable first.
	var victims []*running
	for i := evicted - 1; i >= 0; i-- {
		j := cands[i]
		c.restore(j)
		if allocs, ok := c.tryPlace(r, model); ok {
			for _, a := range allocs {
				c.release(a)
			}
			continue
		}
		c.evict(j)
		victims = append(victims, j)
	}
	allocs, _ := c.tryPlace(r, model)
	names := make([]string, len(victims))
	for i, j := range victims {
		names[len(victims)-1-i] = j.job
		delete(c.running, j.job)
	}
	return names, allocs, true
}

// touchesEligible reports whether job j holds anything on a node r may use.
func (c *Cluster) touchesEligible(j *running, r *Request) bool {
	for _, a := range j.allocs {
		if static(&c.Nodes[a.Node], r) {
			return true
		}
	}
	return false
}

func (c *Cluster) evict(j *running) {
	for _, a := range j.allocs {
		c.release(a)
	}
}

func (c *Cluster) restore(j *running) {
	for _, a := range j.allocs {
		c.take(a)
	}
}

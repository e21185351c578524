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
	} else if victims, allocs, ok := c.preempt(r, model, c.lowerPreemptible(r)); ok {
		return Result{Allocs: c.commit(r, allocs), Victims: victims}
	} else {
		return Result{Reason: reason}
	}
}

// commit records r as running on allocs (already taken).
func (c *Cluster) commit(r *Request, allocs []Alloc) []Alloc {
	out := groupByNode(slices.Clone(allocs))
	c.seq++
	c.remember(&running{job: r.Job, priority: r.Priority, preemptible: r.Preemptible, seq: c.seq, allocs: out})
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
			shareLeft := 0.0
			switch {
			case r.GPUs > 0:
				gpus = pickGPUs(n, n.wholeFree(), r.GPUs, model)
				if gpus == 0 {
					continue
				}
			case r.GPUMemory > 0:
				p := pickShare(n, r.GPUMemory, model)
				if p < 0 {
					continue
				}
				gpus = 1 << p
				shareLeft = frac(n.gpuFree(p)-r.GPUMemory, n.GPUs[p].Memory)
			}
			s := c.score(n, r, shareLeft)
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
		if r.GPUs == 0 {
			a.GPUMemory = r.GPUMemory
		}
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

// pickShare returns the position of the GPU of n (of the model, when one
// is asked) that holds mem and is left fullest by it (best fit, the lowest
// position among equals), or -1 when none holds it.
func pickShare(n *Node, mem int64, model string) int {
	cand := n.freeGPUs
	if model != "" {
		cand &= modelMask(n, model)
	}
	best, bestLeft := -1, int64(0)
	for ; cand != 0; cand &= cand - 1 {
		p := bits.TrailingZeros64(cand)
		left := n.gpuFree(p) - mem
		if left < 0 {
			continue
		}
		if best < 0 || left < bestLeft {
			best, bestLeft = p, left
		}
	}
	return best
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
// worker of r (bin packing) or its opposite (spread). shareLeft is the
// fraction of its GPU's memory a share leaves free. A job without GPUs is
// steered away from GPU nodes either way.
func (c *Cluster) score(n *Node, r *Request, shareLeft float64) float64 {
	left := frac(n.freeCPU-r.CPU, n.CPU) + frac(n.freeMem-r.Memory, n.Memory)
	if len(n.GPUs) > 0 {
		left += 2 * frac(int64(bits.OnesCount64(n.wholeFree())-r.GPUs), int64(len(n.GPUs)))
	}
	if r.GPUMemory > 0 && r.GPUs == 0 {
		left += 2 * shareLeft
	}
	if c.Strategy == Spread {
		left = -left
	}
	if r.GPUs == 0 && r.GPUMemory == 0 && len(n.GPUs) > 0 {
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

// preempt evicts lower-priority preemptible jobs so that r fits, keeping
// as many as it can: it checks that r fits with every candidate evicted,
// then evicts whole priority levels from the lowest until r fits, keeps
// those on nodes placement did not use, and gives back the rest one by
// one, the most valuable (highest priority, oldest) first, while r still
// fits. It reports the victims (least valuable first) and r's allocs, or
// changes nothing. Its cost is a few scans of the nodes, however many
// jobs run.
func (c *Cluster) preempt(r *Request, model string, eligible func(*running) bool) ([]string, []Alloc, bool) {
	if eligible == nil {
		return nil, nil, false
	}
	cands := c.cands[:0]
	defer func() { c.cands = cands[:0] }()
	for _, j := range c.running {
		if eligible(j) && c.touchesEligible(j, r) {
			cands = append(cands, j)
		}
	}
	if len(cands) == 0 {
		return nil, nil, false
	}
	// Least valuable first: lowest priority, then newest.
	slices.SortFunc(cands, func(a, b *running) int {
		return cmp.Or(cmp.Compare(a.priority, b.priority), cmp.Compare(b.seq, a.seq))
	})
	for _, j := range cands {
		c.evict(j)
	}
	if allocs, ok := c.tryPlace(r, model); ok {
		for _, a := range allocs {
			c.release(a)
		}
	} else {
		for _, j := range cands {
			c.restore(j)
		}
		return nil, nil, false
	}
	// Evict whole priority levels, the lowest first, until r fits.
	for _, j := range cands {
		c.restore(j)
	}
	var allocs []Alloc
	evicted := 0
	for evicted < len(cands) {
		level := cands[evicted].priority
		for ; evicted < len(cands) && cands[evicted].priority == level; evicted++ {
			c.evict(cands[evicted])
		}
		var ok bool
		if allocs, ok = c.tryPlace(r, model); ok {
			break
		}
	}
	used := map[int]bool{}
	for _, a := range allocs {
		used[a.Node] = true
		c.release(a)
	}
	// Keep the evicted on nodes r does not use; give back the others one
	// by one, the most valuable first, while r still fits.
	var needed []*running
	for i := evicted - 1; i >= 0; i-- {
		j := cands[i]
		if slices.ContainsFunc(j.allocs, func(a Alloc) bool { return used[a.Node] }) {
			needed = append(needed, j)
		} else {
			c.restore(j)
		}
	}
	var victims []*running
	for _, j := range needed {
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
	allocs, ok := c.tryPlace(r, model)
	if !ok { // cannot happen: the victims alone made room
		for _, j := range victims {
			c.restore(j)
		}
		return nil, nil, false
	}
	names := make([]string, len(victims))
	for i, j := range victims {
		names[len(victims)-1-i] = j.job
		c.forget(j.job)
	}
	return names, allocs, true
}

// lowerPreemptible is the jobs r may preempt by priority: preemptible,
// of lower priority (nil when there are none, the common case).
func (c *Cluster) lowerPreemptible(r *Request) func(*running) bool {
	if !c.hasPreemptibleBelow(r.Priority) {
		return nil
	}
	return func(j *running) bool { return j.preemptible && j.priority < r.Priority }
}

// PlaceReclaiming places r on free resources or, failing that, by
// evicting some of the jobs may names (whatever their priority: capacity
// they borrowed), as few and as little valuable as Place's preemption
// would. When it succeeds the allocs are taken and the victims released;
// otherwise nothing changes.
func (c *Cluster) PlaceReclaiming(r *Request, may func(job string) bool) Result {
	if r.Workers < 1 {
		r.Workers = 1
	}
	model := lower(r.GPUModel)
	if allocs, ok := c.tryPlace(r, model); ok {
		return Result{Allocs: c.commit(r, allocs)}
	}
	reason, never := c.explain(r, model)
	if never {
		return Result{Reason: reason, Unschedulable: true}
	}
	if victims, allocs, ok := c.preempt(r, model, func(j *running) bool { return may(j.job) }); ok {
		return Result{Allocs: c.commit(r, allocs), Victims: victims}
	}
	return Result{Reason: reason}
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

// remember records a placed job, counting the preemptible ones per
// priority so that most requests skip the preemption search at once.
func (c *Cluster) remember(j *running) {
	c.forget(j.job)
	c.running[j.job] = j
	if j.preemptible {
		c.preemptible[j.priority]++
	}
}

func (c *Cluster) forget(job string) {
	j, ok := c.running[job]
	if !ok {
		return
	}
	delete(c.running, job)
	if j.preemptible {
		if c.preemptible[j.priority]--; c.preemptible[j.priority] == 0 {
			delete(c.preemptible, j.priority)
		}
	}
}

func (c *Cluster) hasPreemptibleBelow(p int32) bool {
	for prio := range c.preemptible {
		if prio < p {
			return true
		}
	}
	return false
}

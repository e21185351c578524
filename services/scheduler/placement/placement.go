// Package placement decides where jobs run: a pure, allocation-light
// function of the nodes, what already runs on them and one request at a
// time. It knows nothing of etcd; the scheduler's leader builds a Cluster
// from its view, places the queue in order, and persists the decisions.
//
// A request passes the filters (pool, node selector, GPU model, then free
// CPU, memory and GPUs) and the nodes left are scored: best-fit bin packing
// (the least room left over) by default, or spread (the most). A gang of
// several workers is placed worker by worker and rolled back unless every
// worker fits, so nothing is ever half allocated. When a request does not
// fit, lower-priority preemptible jobs may be evicted to make room.
//
// A request may ask for a share of one GPU by memory instead of whole
// GPUs: shares are packed onto the fullest GPU that still holds them (best
// fit), never beyond the GPU's memory, and a whole-GPU request takes only
// a GPU that holds no share.
package placement

import (
	"math/bits"
	"slices"
)

// Strategy scores the nodes that pass the filters.
type Strategy int

const (
	// BinPack prefers the node left fullest (best fit).
	BinPack Strategy = iota
	// Spread prefers the node left emptiest.
	Spread
)

// GPU is one accelerator of a node.
type GPU struct {
	Index int32
	Model string
	// Memory in bytes; shares of the GPU add up to at most this.
	Memory int64
}

// Node is a machine: its capacity, identity and, once in a Cluster, what
// is free on it.
type Node struct {
	Name   string
	Pool   string
	Labels map[string]string
	CPU    int64
	Memory int64
	// GPUs, at most 64 per node.
	GPUs []GPU

	freeCPU, freeMem int64
	freeGPUs         uint64 // bit i: GPUs[i] is not held whole
	allGPUs          uint64
	shared           []int64  // memory shares hold, by position
	sharedGPUs       uint64   // bit i: GPUs[i] holds a share
	models           []string // lower-cased GPU models, by position
}

// Request is one job to place: every worker needs the resources given.
type Request struct {
	Job      string
	Priority int32
	// Workers of a gang (at least 1).
	Workers  int
	CPU      int64
	Memory   int64
	GPUs     int
	GPUModel string
	// GPUMemory asks for a share of one GPU by memory (GPUs must be 0).
	GPUMemory int64
	Pool      string
	Selector  map[string]string
	// Preemptible jobs may be evicted for jobs of higher priority.
	Preemptible bool
}

// Alloc is what one worker holds on one node.
type Alloc struct {
	Node   int // index into Cluster.Nodes
	CPU    int64
	Memory int64
	GPUs   uint64 // positions in Node.GPUs
	// GPUMemory is a share of the one GPU in GPUs; 0: GPUs are held whole.
	GPUMemory int64
}

// GPUIndices returns the device indices of the alloc's GPUs on node n.
func (a Alloc) GPUIndices(n *Node) []int32 {
	if a.GPUs == 0 {
		return nil
	}
	out := make([]int32, 0, bits.OnesCount64(a.GPUs))
	for m := a.GPUs; m != 0; m &= m - 1 {
		out = append(out, n.GPUs[bits.TrailingZeros64(m)].Index)
	}
	return out
}

// running is a placed job that may be preempted.
type running struct {
	job         string
	priority    int32
	preemptible bool
	seq         int64 // larger = placed later
	allocs      []Alloc
}

// Cluster is the state placement works on: the nodes with their free
// resources and the jobs that hold them. It is not safe for concurrent use.
type Cluster struct {
	Nodes    []Node
	Strategy Strategy

	running     map[string]*running
	preemptible map[int32]int // preemptible running jobs per priority
	seq         int64
	scratch     []Alloc
	cands       []*running
}

// NewCluster takes ownership of nodes, with everything free.
func NewCluster(nodes []Node, s Strategy) *Cluster {
	c := &Cluster{Nodes: nodes, Strategy: s, running: make(map[string]*running), preemptible: make(map[int32]int)}
	for i := range c.Nodes {
		n := &c.Nodes[i]
		n.freeCPU, n.freeMem = n.CPU, n.Memory
		if len(n.GPUs) > 64 {
			n.GPUs = n.GPUs[:64]
		}
		n.allGPUs = uint64(1)<<len(n.GPUs) - 1
		if len(n.GPUs) == 64 {
			n.allGPUs = ^uint64(0)
		}
		n.freeGPUs = n.allGPUs
		n.shared, n.sharedGPUs = make([]int64, len(n.GPUs)), 0
		n.models = make([]string, len(n.GPUs))
		for j, g := range n.GPUs {
			n.models[j] = lower(g.Model)
		}
	}
	return c
}

// Free reports what is free on node i: CPU, memory and the GPUs that
// neither a whole-GPU job nor a share holds.
func (c *Cluster) Free(i int) (cpu, mem int64, gpus int) {
	n := &c.Nodes[i]
	return n.freeCPU, n.freeMem, bits.OnesCount64(n.wholeFree())
}

// GPUAllocated reports the memory held on the GPU at position p of node i:
// the shares on it, or all of its memory when a job holds it whole.
func (c *Cluster) GPUAllocated(i, p int) int64 {
	n := &c.Nodes[i]
	if n.freeGPUs&(1<<p) == 0 {
		return n.GPUs[p].Memory
	}
	return n.shared[p]
}

// wholeFree is the GPUs a whole-GPU request may take: held by nothing.
func (n *Node) wholeFree() uint64 { return n.freeGPUs &^ n.sharedGPUs }

// gpuFree is the memory left for shares on the GPU at position p (0 when
// it is held whole).
func (n *Node) gpuFree(p int) int64 {
	if n.freeGPUs&(1<<p) == 0 {
		return 0
	}
	return n.GPUs[p].Memory - n.shared[p]
}

// Bind records a job already placed (from live assignments): its allocs
// are taken from the nodes. A preemptible job may be evicted later for a
// job of higher priority. GPUs are positions (see GPUPositions).
func (c *Cluster) Bind(job string, priority int32, preemptible bool, allocs []Alloc) {
	for _, a := range allocs {
		c.take(a)
	}
	c.seq++
	c.remember(&running{job: job, priority: priority, preemptible: preemptible, seq: c.seq, allocs: allocs})
}

// GPUPositions maps device indices on node i to positions (an Alloc's
// GPUs); unknown indices are skipped.
func (c *Cluster) GPUPositions(i int, indices []int32) uint64 {
	var m uint64
	for _, idx := range indices {
		for p, g := range c.Nodes[i].GPUs {
			if g.Index == idx {
				m |= 1 << p
			}
		}
	}
	return m
}

// Result is the outcome of placing one request.
type Result struct {
	// Allocs, one per worker in rank order (workers on one node adjacent),
	// when placed.
	Allocs []Alloc
	// Victims are the jobs evicted to make room (lowest priority first).
	Victims []string
	// Reason says why the request was not placed; Unschedulable is true
	// when it fits no node even when the cluster is empty.
	Reason        string
	Unschedulable bool
}

func (c *Cluster) take(a Alloc) {
	n := &c.Nodes[a.Node]
	n.freeCPU -= a.CPU
	n.freeMem -= a.Memory
	if a.GPUMemory == 0 {
		n.freeGPUs &^= a.GPUs
		return
	}
	for m := a.GPUs & n.allGPUs; m != 0; m &= m - 1 {
		p := bits.TrailingZeros64(m)
		n.shared[p] += a.GPUMemory
		n.sharedGPUs |= 1 << p
	}
}

func (c *Cluster) release(a Alloc) {
	n := &c.Nodes[a.Node]
	n.freeCPU += a.CPU
	n.freeMem += a.Memory
	if a.GPUMemory == 0 {
		n.freeGPUs |= a.GPUs & n.allGPUs
		return
	}
	for m := a.GPUs & n.allGPUs; m != 0; m &= m - 1 {
		p := bits.TrailingZeros64(m)
		if n.shared[p] -= a.GPUMemory; n.shared[p] <= 0 {
			n.shared[p] = 0
			n.sharedGPUs &^= 1 << p
		}
	}
}

// groupByNode orders allocs so that workers on one node are adjacent, nodes
// in order of first appearance (rank 0's node first).
func groupByNode(allocs []Alloc) []Alloc {
	if len(allocs) < 3 {
		return allocs
	}
	out := make([]Alloc, 0, len(allocs))
	for i, a := range allocs {
		if slices.ContainsFunc(allocs[:i], func(b Alloc) bool { return b.Node == a.Node }) {
			continue
		}
		for _, b := range allocs[i:] {
			if b.Node == a.Node {
				out = append(out, b)
			}
		}
	}
	return out
}

func lower(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] >= 'A' && s[i] <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if b[j] >= 'A' && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

package placement

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

const gib = 1 << 30

func node(name string, cpu, memGiB int64, gpus int, model string) Node {
	n := Node{Name: name, CPU: cpu, Memory: memGiB * gib}
	for i := range gpus {
		n.GPUs = append(n.GPUs, GPU{Index: int32(i), Model: model})
	}
	return n
}

func req(job string, cpu, memGiB int64, gpus int) *Request {
	return &Request{Job: job, Workers: 1, CPU: cpu, Memory: memGiB * gib, GPUs: gpus}
}

// nodesOf names the nodes r's allocs landed on.
func nodesOf(c *Cluster, res Result) []string {
	var out []string
	for _, a := range res.Allocs {
		out = append(out, c.Nodes[a.Node].Name)
	}
	return out
}

func TestFilters(t *testing.T) {
	t.Parallel()
	base := func() []Node {
		a := node("a", 4000, 16, 0, "")
		b := node("b", 8000, 32, 2, "NVIDIA A100-SXM4-80GB")
		b.Labels = map[string]string{"zone": "z1"}
		c := node("c", 8000, 32, 4, "Tesla T4")
		c.Pool = "batch"
		return []Node{a, b, c}
	}
	tests := []struct {
		name   string
		r      *Request
		want   []string
		reason string
	}{
		{"cpu only prefers a node without GPUs", req("j", 1000, 1, 0), []string{"a"}, ""},
		{"too much cpu for a goes elsewhere", req("j", 6000, 1, 0), []string{"b"}, ""},
		{"gpu count", req("j", 1000, 1, 3), []string{"c"}, ""},
		{"gpu model substring", &Request{Job: "j", CPU: 1, GPUs: 1, GPUModel: "a100"}, []string{"b"}, ""},
		{"gpu model missing", &Request{Job: "j", CPU: 1, GPUs: 1, GPUModel: "H100"}, nil,
			`Unschedulable: no node matches GPUs of model "H100"`},
		{"selector", &Request{Job: "j", CPU: 1, Selector: map[string]string{"zone": "z1"}}, []string{"b"}, ""},
		{"selector missing", &Request{Job: "j", CPU: 1, Selector: map[string]string{"zone": "z9"}}, nil,
			"Unschedulable: no node matches node_selector zone=z9"},
		{"pool", &Request{Job: "j", CPU: 1, Pool: "batch"}, []string{"c"}, ""},
		{"too many gpus", req("j", 1000, 1, 8), nil, "Unschedulable: needs 8 GPUs, largest node has 4"},
		{"too much cpu", req("j", 64000, 1, 0), nil, "Unschedulable: needs 64 CPU, largest node has 8"},
		{"too much memory", req("j", 1000, 100, 0), nil, "Unschedulable: needs 100GiB of memory, largest node has 32GiB"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := NewCluster(base(), BinPack)
			res := c.Place(tt.r, true)
			require.Equal(t, tt.want, nodesOf(c, res))
			require.Equal(t, tt.reason, res.Reason)
			require.Equal(t, tt.reason != "", res.Unschedulable)
		})
	}
}

func TestBinPackVersusSpread(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		s    Strategy
		want []string
	}{
		{BinPack, []string{"n0", "n0", "n0", "n0"}},
		{Spread, []string{"n0", "n1", "n2", "n0"}},
	} {
		c := NewCluster([]Node{node("n0", 4000, 8, 0, ""), node("n1", 4000, 8, 0, ""), node("n2", 4000, 8, 0, "")}, tt.s)
		var got []string
		for i := range 4 {
			got = append(got, nodesOf(c, c.Place(req(fmt.Sprint(i), 1000, 1, 0), false))...)
		}
		require.Equal(t, tt.want, got, "strategy %d", tt.s)
	}
	// Best fit picks the node with the least room left.
	c := NewCluster([]Node{node("big", 16000, 64, 0, ""), node("small", 2000, 4, 0, "")}, BinPack)
	require.Equal(t, []string{"small"}, nodesOf(c, c.Place(req("j", 2000, 4, 0), false)))
}

func TestGangAllOrNothing(t *testing.T) {
	t.Parallel()
	c := NewCluster([]Node{node("a", 8000, 32, 2, "T4"), node("b", 8000, 32, 2, "T4")}, BinPack)
	// Three two-GPU workers cannot fit on four GPUs: nothing is taken.
	g := &Request{Job: "gang", Workers: 3, CPU: 1000, Memory: gib, GPUs: 2}
	res := c.Place(g, true)
	require.Empty(t, res.Allocs)
	require.True(t, res.Unschedulable)
	require.Contains(t, res.Reason, "needs 3 workers")
	for i := range c.Nodes {
		cpu, _, gpus := c.Free(i)
		require.Equal(t, int64(8000), cpu)
		require.Equal(t, 2, gpus)
	}
	// One GPU taken: a two-worker gang waits, and rolls back its first worker.
	require.NotEmpty(t, c.Place(req("one", 1000, 1, 1), false).Allocs)
	g2 := &Request{Job: "gang2", Workers: 2, CPU: 1000, Memory: gib, GPUs: 2}
	res = c.Place(g2, false)
	require.Empty(t, res.Allocs)
	require.False(t, res.Unschedulable)
	require.Contains(t, res.Reason, "Waiting for capacity")
	_, _, ga := c.Free(0)
	_, _, gb := c.Free(1)
	require.Equal(t, 3, ga+gb, "the failed gang holds nothing")
	// Workers on one node are adjacent, each with its own GPUs.
	c = NewCluster([]Node{node("a", 8000, 32, 4, "T4")}, BinPack)
	res = c.Place(&Request{Job: "g", Workers: 2, CPU: 1000, GPUs: 2}, false)
	require.Len(t, res.Allocs, 2)
	require.Equal(t, []int32{0, 1}, res.Allocs[0].GPUIndices(&c.Nodes[0]))
	require.Equal(t, []int32{2, 3}, res.Allocs[1].GPUIndices(&c.Nodes[0]))
}

func TestGroupByNode(t *testing.T) {
	t.Parallel()
	got := groupByNode([]Alloc{{Node: 2}, {Node: 1}, {Node: 2}, {Node: 0}, {Node: 1}})
	require.Equal(t, []Alloc{{Node: 2}, {Node: 2}, {Node: 1}, {Node: 1}, {Node: 0}}, got)
}

func TestPreemption(t *testing.T) {
	t.Parallel()
	c := NewCluster([]Node{node("a", 4000, 16, 4, "T4")}, BinPack)
	c.Bind("low-old", 0, true, []Alloc{{Node: 0, CPU: 1000, GPUs: 0b0011}})
	c.Bind("low-new", 0, true, []Alloc{{Node: 0, CPU: 1000, GPUs: 0b0100}})
	c.Bind("pinned", 0, false, []Alloc{{Node: 0, CPU: 1000, GPUs: 0b1000}})

	// Same priority: no preemption.
	res := c.Place(&Request{Job: "peer", Priority: 0, CPU: 1000, GPUs: 1}, true)
	require.Empty(t, res.Allocs)
	require.Contains(t, res.Reason, "Waiting for capacity")

	// Higher priority, needs one GPU: the newest low job goes.
	res = c.Place(&Request{Job: "hi1", Priority: 5, CPU: 1000, GPUs: 1}, true)
	require.Equal(t, []string{"low-new"}, res.Victims)
	require.Equal(t, []int32{2}, res.Allocs[0].GPUIndices(&c.Nodes[0]))

	// Needs two: only low-old can give them; pinned and hi1 stay.
	res = c.Place(&Request{Job: "hi2", Priority: 5, CPU: 1000, GPUs: 2}, true)
	require.Equal(t, []string{"low-old"}, res.Victims)

	// Nothing preemptible left: the request waits, nothing changes.
	res = c.Place(&Request{Job: "hi3", Priority: 9, CPU: 1000, GPUs: 1}, true)
	require.Empty(t, res.Victims)
	require.Empty(t, res.Allocs)
	cpu, _, gpus := c.Free(0)
	require.Equal(t, int64(1000), cpu)
	require.Equal(t, 0, gpus)
}

func TestPreemptionKeepsWhatItCanSpare(t *testing.T) {
	t.Parallel()
	c := NewCluster([]Node{node("a", 3000, 16, 0, ""), node("b", 3000, 16, 0, "")}, BinPack)
	// a holds three small preemptible jobs, b one big one.
	for i := range 3 {
		c.Bind(fmt.Sprint("small", i), 1, true, []Alloc{{Node: 0, CPU: 1000}})
	}
	c.Bind("big", 0, true, []Alloc{{Node: 1, CPU: 3000}})
	// Evicted in order: big (lowest priority) frees b, which is enough.
	res := c.Place(&Request{Job: "hi", Priority: 9, CPU: 2000}, true)
	require.Equal(t, []string{"big"}, res.Victims)
	require.Equal(t, []string{"b"}, nodesOf(c, res))
}

func TestPriorityOrderIsTheCallersAndFIFOHolds(t *testing.T) {
	t.Parallel()
	// The scheduler sorts the queue; placement is order-preserving: a job
	// placed earlier keeps its room.
	c := NewCluster([]Node{node("a", 2000, 4, 0, "")}, BinPack)
	require.NotEmpty(t, c.Place(req("first", 2000, 1, 0), false).Allocs)
	res := c.Place(req("second", 2000, 1, 0), false)
	require.Empty(t, res.Allocs)
	require.Equal(t, "Waiting for capacity: needs 1 worker(s) of 2 CPU, 1GiB memory on 1 matching node(s)", res.Reason)
}

func TestNoNodes(t *testing.T) {
	t.Parallel()
	res := NewCluster(nil, BinPack).Place(req("j", 1, 0, 0), true)
	require.True(t, res.Unschedulable)
	require.Equal(t, "Unschedulable: no node is registered", res.Reason)
}

func TestUnschedulableSaysHowManyGPUs(t *testing.T) {
	t.Parallel()
	c := &Cluster{Nodes: []Node{{Name: "cpu-only", CPU: 4000, Memory: 8 << 30}}}
	reason, never := c.explain(&Request{Workers: 1, CPU: 1000, Memory: 1 << 30, GPUs: 8}, "")
	require.True(t, never)
	require.Equal(t, "Unschedulable: needs 8 GPUs, largest node has 0", reason)
}

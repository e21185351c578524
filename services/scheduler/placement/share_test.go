package placement

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// gpuNode is a node of n GPUs of memGiB each.
func gpuNode(name string, n int, memGiB int64) Node {
	nd := node(name, 64000, 256, n, "NVIDIA L4")
	for i := range nd.GPUs {
		nd.GPUs[i].Memory = memGiB * gib
	}
	return nd
}

func share(job string, memGiB int64) *Request {
	return &Request{Job: job, Workers: 1, CPU: 100, Memory: gib, GPUMemory: memGiB * gib}
}

// gpuOf is the device index a one-GPU alloc landed on.
func gpuOf(t *testing.T, c *Cluster, res Result) int32 {
	t.Helper()
	require.Len(t, res.Allocs, 1, res.Reason)
	idx := res.Allocs[0].GPUIndices(&c.Nodes[res.Allocs[0].Node])
	require.Len(t, idx, 1)
	return idx[0]
}

func TestSharesPackTwoOnOneGPUAndWaitWithTheReason(t *testing.T) {
	t.Parallel()
	c := NewCluster([]Node{gpuNode("a", 2, 24)}, BinPack)
	var got []int32
	for _, j := range []string{"r0", "r1", "r2"} {
		res := c.Place(share(j, 10), true)
		got = append(got, gpuOf(t, c, res))
		require.Equal(t, int64(10*gib), res.Allocs[0].GPUMemory)
	}
	require.ElementsMatch(t, []int32{0, 0, 1}, got, "two shares on one GPU, one on the other")
	require.Equal(t, int64(20*gib), c.GPUAllocated(0, 0))
	require.Equal(t, int64(10*gib), c.GPUAllocated(0, 1))

	// 4 and 14 GiB are left: a 16 GiB share waits, saying so.
	res := c.Place(share("big", 16), true)
	require.Empty(t, res.Allocs)
	require.False(t, res.Unschedulable)
	require.Equal(t, "Waiting for capacity: needs 16GiB on one GPU, the most free on any GPU is 14GiB", res.Reason)

	// A fourth 10 GiB share fills the other GPU; a fifth waits.
	require.Equal(t, int32(1), gpuOf(t, c, c.Place(share("r3", 10), true)))
	res = c.Place(share("r4", 10), true)
	require.Empty(t, res.Allocs)
	require.False(t, res.Unschedulable)
	require.Equal(t, "Waiting for capacity: needs 10GiB on one GPU, the most free on any GPU is 4GiB", res.Reason)

	// A share larger than any GPU never fits.
	res = c.Place(share("huge", 30), true)
	require.True(t, res.Unschedulable)
	require.Equal(t, "Unschedulable: needs 30GiB on one GPU, the largest GPU has 24GiB", res.Reason)
}

func TestShareBestFitTakesTheFullestGPUThatHoldsIt(t *testing.T) {
	t.Parallel()
	c := NewCluster([]Node{gpuNode("a", 3, 24)}, BinPack)
	c.Bind("x", 0, false, []Alloc{{Node: 0, CPU: 100, GPUs: 1 << 0, GPUMemory: 12 * gib}}) // 12 GiB free
	c.Bind("y", 0, false, []Alloc{{Node: 0, CPU: 100, GPUs: 1 << 1, GPUMemory: 14 * gib}}) // 10 GiB free
	// 24 GiB free on GPU 2: 8 GiB goes to GPU 1, the fullest that holds
	// it, not to the first that does.
	require.Equal(t, int32(1), gpuOf(t, c, c.Place(share("a", 8), false)))
	require.Equal(t, int64(22*gib), c.GPUAllocated(0, 1))
	// 12 GiB fits exactly on GPU 0.
	require.Equal(t, int32(0), gpuOf(t, c, c.Place(share("b", 12), false)))
	require.Equal(t, int64(24*gib), c.GPUAllocated(0, 0))
	require.Zero(t, c.GPUAllocated(0, 2))
}

func TestSharesPreferTheFullestGPUAcrossNodes(t *testing.T) {
	t.Parallel()
	c := NewCluster([]Node{gpuNode("a", 1, 24), gpuNode("b", 1, 24)}, BinPack)
	c.Bind("x", 0, false, []Alloc{{Node: 1, CPU: 100, GPUs: 1, GPUMemory: 10 * gib}})
	res := c.Place(share("s", 10), false)
	require.Equal(t, []string{"b"}, nodesOf(c, res))
}

func TestWholeGPUsAndSharesExcludeEachOther(t *testing.T) {
	t.Parallel()
	c := NewCluster([]Node{gpuNode("a", 2, 24)}, BinPack)
	// A share on GPU 0 leaves only GPU 1 to a whole-GPU request.
	require.Equal(t, int32(0), gpuOf(t, c, c.Place(share("s", 4), false)))
	whole := &Request{Job: "w", Workers: 1, CPU: 100, GPUs: 1}
	require.Equal(t, int32(1), gpuOf(t, c, c.Place(whole, false)))
	require.Equal(t, int64(24*gib), c.GPUAllocated(0, 1), "a whole GPU reserves all of its memory")
	_, _, free := c.Free(0)
	require.Zero(t, free)
	// Neither a second whole GPU nor a share on the whole one fits.
	res := c.Place(&Request{Job: "w2", Workers: 1, CPU: 100, GPUs: 1}, false)
	require.Empty(t, res.Allocs)
	require.Equal(t, int32(0), gpuOf(t, c, c.Place(share("s2", 20), false)), "a share goes to the shared GPU")
	res = c.Place(share("s3", 1), false)
	require.Empty(t, res.Allocs)
	require.Contains(t, res.Reason, "the most free on any GPU is 0B")

	// When the share leaves GPU 0, a whole GPU may take it.
	c.evict(c.running["s"])
	c.forget("s")
	c.evict(c.running["s2"])
	c.forget("s2")
	require.Equal(t, int32(0), gpuOf(t, c, c.Place(&Request{Job: "w3", Workers: 1, CPU: 100, GPUs: 1}, false)))
}

func TestShareOfAGPUModel(t *testing.T) {
	t.Parallel()
	a := gpuNode("a", 1, 24)
	b := gpuNode("b", 1, 80)
	b.GPUs[0].Model = "NVIDIA A100-SXM4-80GB"
	c := NewCluster([]Node{a, b}, BinPack)
	r := share("s", 10)
	r.GPUModel = "a100"
	require.Equal(t, []string{"b"}, nodesOf(c, c.Place(r, false)))

	r = share("t", 10)
	r.GPUModel = "h100"
	res := c.Place(r, false)
	require.True(t, res.Unschedulable)
	require.Equal(t, `Unschedulable: no node matches GPUs of model "h100"`, res.Reason)
}

func TestShareOnANodeWithoutGPUs(t *testing.T) {
	t.Parallel()
	c := NewCluster([]Node{node("cpu", 8000, 32, 0, "")}, BinPack)
	res := c.Place(share("s", 1), false)
	require.True(t, res.Unschedulable)
	require.Equal(t, "Unschedulable: needs 1GiB on one GPU, no matching node has a GPU", res.Reason)
}

func TestPreemptionFreesShares(t *testing.T) {
	t.Parallel()
	c := NewCluster([]Node{gpuNode("a", 1, 24)}, BinPack)
	c.Bind("low-a", 0, true, []Alloc{{Node: 0, CPU: 100, GPUs: 1, GPUMemory: 10 * gib}})
	c.Bind("low-b", 0, true, []Alloc{{Node: 0, CPU: 100, GPUs: 1, GPUMemory: 10 * gib}})
	// 4 GiB free: 12 GiB needs one victim, not two.
	hi := share("hi", 12)
	hi.Priority = 5
	res := c.Place(hi, true)
	require.Len(t, res.Allocs, 1, res.Reason)
	require.Len(t, res.Victims, 1)
	require.Equal(t, int64(22*gib), c.GPUAllocated(0, 0))

	// A whole GPU needs every share gone.
	whole := &Request{Job: "whole", Priority: 9, Workers: 1, CPU: 100, GPUs: 1}
	c2 := NewCluster([]Node{gpuNode("a", 1, 24)}, BinPack)
	c2.Bind("low-a", 0, true, []Alloc{{Node: 0, CPU: 100, GPUs: 1, GPUMemory: 10 * gib}})
	c2.Bind("low-b", 0, true, []Alloc{{Node: 0, CPU: 100, GPUs: 1, GPUMemory: 2 * gib}})
	res = c2.Place(whole, true)
	require.Len(t, res.Allocs, 1, res.Reason)
	require.ElementsMatch(t, []string{"low-a", "low-b"}, res.Victims)
	require.Equal(t, int64(24*gib), c2.GPUAllocated(0, 0))

	// A share is never preempted by one of the same priority.
	same := share("same", 20)
	res = c.Place(same, true)
	require.Empty(t, res.Allocs)
	require.Empty(t, res.Victims)
}

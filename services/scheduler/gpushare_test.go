//go:build integration

package scheduler

import (
	"testing"

	"github.com/stretchr/testify/require"

	schedulerv1 "github.com/bmaas/bmaas/api/bmaas/scheduler/v1"
	"github.com/bmaas/bmaas/services/scheduler/schedkeys"
)

// TestGPUSharesArePackedAndShown: shares of 6 GiB on two 16 GiB GPUs go
// two on one GPU before the other, the node shows what each GPU holds, a
// share that fits nowhere waits with the reason, and a whole GPU takes
// only a GPU without shares.
func TestGPUSharesArePackedAndShown(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false)
	e.node("n1", 64000, 64, 2)
	s := e.start("a", nil)
	shareSpec := func(gib int64) *schedulerv1.JobSpec {
		return spec(func(s *schedulerv1.JobSpec) { s.Resources.GpuMemoryBytes = gib << 30 })
	}
	var gpus []int32
	for range 3 {
		id := submit(t, s, shareSpec(6))
		e.wait(s.c, id, inState(stScheduled))
		a := e.assignments(id)[schedkeys.Assignment("n1", id, 0)]
		require.Len(t, a.GpuIndices, 1)
		gpus = append(gpus, a.GpuIndices[0])
	}
	require.Equal(t, []int32{0, 0, 1}, gpus)

	n, err := s.c.GetNode(t.Context(), &schedulerv1.GetNodeRequest{Name: "n1"})
	require.NoError(t, err)
	require.Equal(t, int64(12<<30), n.Node.Gpus[0].AllocatedMemoryBytes)
	require.Equal(t, int64(6<<30), n.Node.Gpus[1].AllocatedMemoryBytes)
	require.Zero(t, n.Node.AllocatedGpus, "shares are not whole GPUs")

	// 4 and 10 GiB are left: 11 GiB waits, saying why.
	big := submit(t, s, shareSpec(11))
	e.wait(s.c, big, func(j *schedulerv1.Job) bool {
		return j.Reason == "Waiting for capacity: needs 11GiB on one GPU, the most free on any GPU is 10GiB"
	})
	// Both GPUs hold a share: a whole GPU waits too.
	whole := submit(t, s, spec(func(s *schedulerv1.JobSpec) { s.Resources.Gpus = 1 }))
	j := e.wait(s.c, whole, func(j *schedulerv1.Job) bool { return j.Reason != "" })
	require.Equal(t, stQueued, j.State, j.Reason)

	ls, err := s.c.ListNodes(t.Context(), &schedulerv1.ListNodesRequest{})
	require.NoError(t, err)
	require.Len(t, ls.Nodes, 1)
	require.Equal(t, int64(12<<30), ls.Nodes[0].Gpus[0].AllocatedMemoryBytes)
}

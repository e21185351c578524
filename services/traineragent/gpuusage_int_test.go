//go:build integration

package traineragent

import (
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	schedulerv1 "github.com/bmaas/bmaas/api/bmaas/scheduler/v1"
	"github.com/bmaas/bmaas/internal/testenv"
	"github.com/bmaas/bmaas/pkg/gpu"
	"github.com/bmaas/bmaas/services/scheduler/schedkeys"
)

// varyingGPU is one GPU whose readings the test sets.
type varyingGPU struct {
	gpu.Fake
	mu sync.Mutex
	u  gpu.Usage
}

func (v *varyingGPU) set(u gpu.Usage) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.u = u
}

func (v *varyingGPU) Usage(int) (gpu.Usage, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.u, nil
}

// TestGPUUsageRewritesTheNodeWhenItMoves: the node record carries what
// the GPUs read at registration; a heartbeat writes it again, under the
// node's lease, only when a reading moved.
func TestGPUUsageRewritesTheNodeWhenItMoves(t *testing.T) {
	t.Parallel()
	cli := testenv.EtcdClient(t)
	s := newNodeService(t, cli, false)
	src := &varyingGPU{Fake: gpu.Fake{Node: "n1", N: 1, MemoryBytes: 24 << 30}}
	src.set(gpu.Usage{Utilization: 0.1, MemoryUsedBytes: 1 << 30})
	s.src = src
	s.gpus, _ = src.Devices()
	ctx := t.Context()
	lease, err := s.register(ctx, true)
	require.NoError(t, err)

	read := func() (*schedulerv1.Node, int64) {
		resp, err := cli.Get(ctx, schedkeys.Node("n1"))
		require.NoError(t, err)
		require.Len(t, resp.Kvs, 1)
		require.Equal(t, int64(lease), resp.Kvs[0].Lease, "kept under the node's lease")
		var n schedulerv1.Node
		require.NoError(t, proto.Unmarshal(resp.Kvs[0].Value, &n))
		return &n, resp.Kvs[0].ModRevision
	}
	n, rev := read()
	require.Equal(t, int64(1<<30), n.Gpus[0].UsedMemoryBytes)
	require.Equal(t, int32(10), n.Gpus[0].UtilizationPercent)

	src.set(gpu.Usage{Utilization: 0.12, MemoryUsedBytes: 1 << 30})
	require.NoError(t, s.writeGPUUsage(ctx))
	_, again := read()
	require.Equal(t, rev, again, "jitter is not written")

	src.set(gpu.Usage{Utilization: 0.9, MemoryUsedBytes: 20 << 30})
	require.NoError(t, s.writeGPUUsage(ctx))
	n, again = read()
	require.Greater(t, again, rev)
	require.Equal(t, int64(20<<30), n.Gpus[0].UsedMemoryBytes)
	require.Equal(t, int32(90), n.Gpus[0].UtilizationPercent)
	require.Equal(t, int64(24<<30), n.Gpus[0].MemoryBytes)
}

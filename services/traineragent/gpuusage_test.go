package traineragent

import (
	"errors"
	"flag"
	"io"
	"testing"

	"github.com/stretchr/testify/require"

	schedulerv1 "github.com/bmaas/bmaas/api/bmaas/scheduler/v1"
	"github.com/bmaas/bmaas/pkg/gpu"
)

// busyGPUs is a source whose GPU 0 is half busy with 3 GiB in use; GPU 1
// cannot be read.
type busyGPUs struct{ gpu.Fake }

func (busyGPUs) Usage(i int) (gpu.Usage, error) {
	if i == 0 {
		return gpu.Usage{Utilization: 0.504, MemoryUsedBytes: 3 << 30}, nil
	}
	return gpu.Usage{}, errors.New("gone")
}

func TestFillGPUUsage(t *testing.T) {
	t.Parallel()
	gpus := []*schedulerv1.Gpu{{Index: 0, MemoryBytes: 24 << 30}, {Index: 1, MemoryBytes: 24 << 30}}
	fillGPUUsage(busyGPUs{}, gpus)
	require.Equal(t, int64(3<<30), gpus[0].UsedMemoryBytes)
	require.Equal(t, int32(50), gpus[0].UtilizationPercent)
	require.Zero(t, gpus[1].UsedMemoryBytes)

	fake := []*schedulerv1.Gpu{{Index: 0, MemoryBytes: 16 << 30}}
	fillGPUUsage(gpu.Fake{Node: "n", N: 1}, fake)
	require.Zero(t, fake[0].UsedMemoryBytes, "fake GPUs report nothing in use")
	require.Zero(t, fake[0].UtilizationPercent)
	fillGPUUsage(nil, fake) // no GPUs: nothing happens
}

func TestGPUUsageMoved(t *testing.T) {
	t.Parallel()
	g := func(util int32, used int64) []*schedulerv1.Gpu {
		return []*schedulerv1.Gpu{{MemoryBytes: 100 << 20, UtilizationPercent: util, UsedMemoryBytes: used}}
	}
	require.False(t, gpuUsageMoved(g(50, 10<<20), g(54, 10<<20)), "jitter under 5 points")
	require.True(t, gpuUsageMoved(g(50, 10<<20), g(55, 10<<20)))
	require.True(t, gpuUsageMoved(g(50, 10<<20), g(45, 10<<20)))
	require.False(t, gpuUsageMoved(g(0, 10<<20), g(0, 10<<20+1000)), "under 1% of the memory")
	require.True(t, gpuUsageMoved(g(0, 10<<20), g(0, 12<<20)))
	require.True(t, gpuUsageMoved(g(0, 1000), g(0, 0)), "freed memory is always written")
	require.True(t, gpuUsageMoved(nil, g(0, 0)))
}

func TestFakeGPUMemoryFlag(t *testing.T) {
	t.Parallel()
	require.EqualValues(t, 16<<30, DefaultConfig().FakeGPUMemory)
	for in, want := range map[string]int64{"24Gi": 24 << 30, "24GiB": 24 << 30, "80GB": 80e9, "1048576": 1 << 20} {
		var c Config
		fs := flag.NewFlagSet("", flag.ContinueOnError)
		c.RegisterFlags(fs)
		require.NoError(t, fs.Parse([]string{"--trainer-agent.fake-gpu-memory", in}), in)
		require.Equal(t, want, c.FakeGPUMemory, in)
	}
	var c Config
	fs := flag.NewFlagSet("", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	c.RegisterFlags(fs)
	require.ErrorContains(t, fs.Parse([]string{"--trainer-agent.fake-gpu-memory", "lots"}), "expected bytes")

	c = DefaultConfig()
	c.Node, c.FakeGPUs, c.FakeGPUMemory = "n", 2, 0
	require.ErrorContains(t, c.Validate(), "trainer-agent.fake-gpu-memory: must be positive")
}

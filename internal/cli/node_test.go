package cli

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	schedulerv1 "github.com/bmaas/bmaas/api/bmaas/scheduler/v1"
)

// GetNode answers one of the fake scheduler's nodes.
func (f *fakeScheduler) GetNode(_ context.Context, req *schedulerv1.GetNodeRequest) (*schedulerv1.GetNodeResponse, error) {
	for _, n := range f.nodes {
		if n.Name == req.Name {
			return &schedulerv1.GetNodeResponse{Node: n}, nil
		}
	}
	return nil, status.Errorf(codes.NotFound, "node %q not found", req.Name)
}

func TestParseCPU(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]int64{"1": 1000, "0.5": 500, "2.25": 2250, "500m": 500, " 8 ": 8000, "0": 0, "1m": 1} {
		got, err := parseCPU(in)
		require.NoError(t, err, in)
		require.Equal(t, want, got, in)
	}
	for _, bad := range []string{"", "m", "-1", "1.5m", "0.0001", "two", "1Gi", "inf"} {
		_, err := parseCPU(bad)
		require.Error(t, err, bad)
	}
}

func TestParseMemory(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]int64{
		"1Gi": 1 << 30, "512Mi": 512 << 20, "1.5Gi": 3 << 29, "64Ki": 64 << 10, "2Ti": 2 << 40,
		"1G": 1e9, "500M": 500e6, "1k": 1000, "1K": 1000, "1048576": 1 << 20, "1GiB": 1 << 30, "2GB": 2e9, "0": 0,
	} {
		got, err := parseMemory(in)
		require.NoError(t, err, in)
		require.Equal(t, want, got, in)
	}
	for _, bad := range []string{"", "Gi", "-1Gi", "1ki", "1Xi", "1 G i", "1e9", "1.Gi", "99999999Pi"} {
		_, err := parseMemory(bad)
		require.Error(t, err, bad)
	}
}

func TestGPUSummary(t *testing.T) {
	t.Parallel()
	h100 := &schedulerv1.Gpu{Model: "NVIDIA H100 80GB HBM3", MemoryBytes: 81559 << 20}
	a100 := &schedulerv1.Gpu{Model: "NVIDIA A100-SXM4", MemoryBytes: 40960 << 20}
	fake := &schedulerv1.Gpu{Model: "H100", MemoryBytes: 80 << 30, Fake: true}
	require.Equal(t, "-", gpuSummary(nil))
	require.Equal(t, "2x H100 80GB HBM3", gpuSummary([]*schedulerv1.Gpu{h100, h100}))
	require.Equal(t, "1x A100-SXM4 40GB, 1x H100 80GB HBM3", gpuSummary([]*schedulerv1.Gpu{h100, a100}))
	require.Equal(t, "4x H100 80GB (fake)", gpuSummary([]*schedulerv1.Gpu{fake, fake, fake, fake}))
	require.Equal(t, "1x GPU", gpuSummary([]*schedulerv1.Gpu{{}}))
}

func TestNodeListTable(t *testing.T) {
	t.Parallel()
	g, _, sch := startPlatform(t)
	whole := &schedulerv1.Gpu{Index: 0, Model: "H100", MemoryBytes: 80 << 30, Fake: true, AllocatedMemoryBytes: 80 << 30}
	shared := &schedulerv1.Gpu{Index: 1, Model: "H100", MemoryBytes: 80 << 30, Fake: true, AllocatedMemoryBytes: 20 << 30,
		UsedMemoryBytes: 3 << 29, UtilizationPercent: 42}
	sch.nodes = []*schedulerv1.Node{
		{Name: "gpu-1", Pool: "train", CpuMillis: 16000, MemoryBytes: 64 << 30, Gpus: []*schedulerv1.Gpu{whole, shared},
			AllocatedCpuMillis: 1500, AllocatedMemoryBytes: 2 << 30, AllocatedGpus: 1, Labels: map[string]string{"zone": "a"}},
		{Name: "cpu-1", CpuMillis: 2000, MemoryBytes: 4 << 30},
	}
	out, _, err := run(t, g, "node", "list")
	require.NoError(t, err)
	require.Equal(t, ""+
		"NAME    POOL    CPU   MEMORY   GPUS                  ALLOCATED                                              LABELS   REGISTERED\n"+
		"gpu-1   train   16    64 GiB   2x H100 80GB (fake)   cpu 1.5, mem 2 GiB, gpu 1/2, gpu mem 100 GiB/160 GiB   zone=a   -\n"+
		"cpu-1   -       2     4 GiB    -                     cpu 0, mem 0 B                                         -        -\n"+
		"\n"+
		"NODE    GPU   MODEL         MEMORY   ALLOCATED   USED      UTIL\n"+
		"gpu-1   0     H100 (fake)   80 GiB   80 GiB      0 B       0%\n"+
		"gpu-1   1     H100 (fake)   80 GiB   20 GiB      1.5 GiB   42%\n", out)

	out, _, err = run(t, g, "node", "get", "gpu-1")
	require.NoError(t, err)
	require.Contains(t, out, ""+
		"GPU   MODEL         MEMORY   ALLOCATED   USED      UTIL   UUID\n"+
		"0     H100 (fake)   80 GiB   80 GiB      0 B       0%     -\n"+
		"1     H100 (fake)   80 GiB   20 GiB      1.5 GiB   42%    -\n")

	out, _, err = run(t, g, "-o", "yaml", "node", "list")
	require.NoError(t, err)
	require.Contains(t, out, "nodes:\n  - name: gpu-1\n")
}

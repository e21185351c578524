package gpu

import (
	"log/slog"
	"strings"
	"testing"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
)

func TestFakeStablePerNode(t *testing.T) {
	t.Parallel()
	a, _ := Fake{Node: "n1", N: 2}.Devices()
	b, _ := Fake{Node: "n1", N: 2}.Devices()
	c, _ := Fake{Node: "n2", N: 2}.Devices()
	require.Equal(t, a, b)
	require.NotEqual(t, a[0].UUID, c[0].UUID)
	require.NotEqual(t, a[0].UUID, a[1].UUID)
	require.Equal(t, Device{Index: 1, UUID: a[1].UUID, Model: FakeModel, MemoryBytes: 16 << 30, Fake: true}, a[1])
	require.True(t, strings.HasPrefix(a[0].UUID, "GPU-"))
}

// fakeLib is an NVML library with two devices.
type fakeLib struct {
	init nvml.Return
}

func (l fakeLib) Init() nvml.Return                { return l.init }
func (fakeLib) Shutdown() nvml.Return              { return nvml.SUCCESS }
func (fakeLib) DeviceGetCount() (int, nvml.Return) { return 2, nvml.SUCCESS }
func (fakeLib) DeviceGetHandleByIndex(i int) (nvml.Device, nvml.Return) {
	if i > 1 {
		return nil, nvml.ERROR_INVALID_ARGUMENT
	}
	return fakeDevice{i: i}, nvml.SUCCESS
}

type fakeDevice struct {
	nvml.Device
	i int
}

func (d fakeDevice) GetUUID() (string, nvml.Return) {
	return "GPU-" + string(rune('a'+d.i)), nvml.SUCCESS
}
func (fakeDevice) GetName() (string, nvml.Return) { return "NVIDIA H200", nvml.SUCCESS }
func (fakeDevice) GetMemoryInfo() (nvml.Memory, nvml.Return) {
	return nvml.Memory{Total: 140 << 30, Used: 1 << 30}, nvml.SUCCESS
}
func (d fakeDevice) GetComputeRunningProcesses() ([]nvml.ProcessInfo, nvml.Return) {
	if d.i != 0 {
		return nil, nvml.SUCCESS
	}
	// Two processes of one job, one of no job, one whose memory is unknown.
	return []nvml.ProcessInfo{{Pid: 10, UsedGpuMemory: 2 << 30}, {Pid: 11, UsedGpuMemory: 1 << 30},
		{Pid: 12, UsedGpuMemory: 4 << 30}, {Pid: 13, UsedGpuMemory: ^uint64(0)}}, nvml.SUCCESS
}
func (fakeDevice) GetUtilizationRates() (nvml.Utilization, nvml.Return) {
	return nvml.Utilization{Gpu: 50}, nvml.SUCCESS
}

func TestNVMLSource(t *testing.T) {
	t.Parallel()
	_, err := openNVML(fakeLib{init: nvml.ERROR_LIBRARY_NOT_FOUND})
	require.ErrorIs(t, err, ErrNoDriver)

	src, err := openNVML(fakeLib{init: nvml.SUCCESS})
	require.NoError(t, err)
	defer src.Close()
	ds, err := src.Devices()
	require.NoError(t, err)
	require.Equal(t, []Device{{Index: 0, UUID: "GPU-a", Model: "NVIDIA H200", MemoryBytes: 140 << 30},
		{Index: 1, UUID: "GPU-b", Model: "NVIDIA H200", MemoryBytes: 140 << 30}}, ds)

	owner := func(pid uint32) (string, bool) {
		switch pid {
		case 10, 11:
			return "job-a", true
		case 13:
			return "job-b", true
		}
		return "", false
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(NewCollector(src, "n1", ds).WithOwner(owner))
	require.Equal(t, 14, testutil.CollectAndCount(reg))
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP nv_gpu_utilization GPU utilization rate [0.0 - 1.0).
# TYPE nv_gpu_utilization gauge
nv_gpu_utilization{gpu_uuid="GPU-a",node="n1"} 0.5
nv_gpu_utilization{gpu_uuid="GPU-b",node="n1"} 0.5
# HELP nv_gpu_memory_used_bytes GPU used memory, in bytes.
# TYPE nv_gpu_memory_used_bytes gauge
nv_gpu_memory_used_bytes{gpu_uuid="GPU-a",node="n1"} 1.073741824e+09
nv_gpu_memory_used_bytes{gpu_uuid="GPU-b",node="n1"} 1.073741824e+09
# HELP nv_gpu_memory_total_bytes GPU total memory, in bytes.
# TYPE nv_gpu_memory_total_bytes gauge
nv_gpu_memory_total_bytes{gpu_uuid="GPU-a",node="n1"} 1.50323855360e+11
nv_gpu_memory_total_bytes{gpu_uuid="GPU-b",node="n1"} 1.50323855360e+11
# HELP bmaas_gpu_task_memory_used_bytes GPU memory the processes of a job's task hold on the GPU, in bytes.
# TYPE bmaas_gpu_task_memory_used_bytes gauge
bmaas_gpu_task_memory_used_bytes{gpu_uuid="GPU-a",job="job-a",node="n1"} 3.221225472e+09
bmaas_gpu_task_memory_used_bytes{gpu_uuid="GPU-a",job="job-b",node="n1"} 0
`), "nv_gpu_utilization", "nv_gpu_memory_used_bytes", "nv_gpu_memory_total_bytes", "bmaas_gpu_task_memory_used_bytes"))
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP bmaas_gpu_utilization_ratio Fraction of time a kernel ran on the GPU over the last sample period.
# TYPE bmaas_gpu_utilization_ratio gauge
bmaas_gpu_utilization_ratio{index="0",model="NVIDIA H200",node="n1",uuid="GPU-a"} 0.5
bmaas_gpu_utilization_ratio{index="1",model="NVIDIA H200",node="n1",uuid="GPU-b"} 0.5
`), "bmaas_gpu_utilization_ratio"))
}

func TestDiscoverWithoutDriver(t *testing.T) {
	t.Parallel()
	src, isNVML, err := Discover("n1", 0, 0, slog.New(slog.DiscardHandler))
	if src != nil {
		// A machine with the driver: the real devices are listed.
		defer src.Close()
		require.True(t, isNVML)
		_, err := src.Devices()
		require.NoError(t, err)
		return
	}
	require.NoError(t, err)
	require.False(t, isNVML)
	fake, _, err := Discover("n1", 3, 0, nil)
	require.NoError(t, err)
	ds, _ := fake.Devices()
	require.Len(t, ds, 3)
}

func TestFakeMemory(t *testing.T) {
	t.Parallel()
	ds, _ := Fake{Node: "n1", N: 2, MemoryBytes: 24 << 30}.Devices()
	require.Equal(t, int64(24<<30), ds[1].MemoryBytes)
	src, _, err := Discover("n1", 1, 24<<30, nil)
	require.NoError(t, err)
	ds, _ = src.Devices()
	require.Equal(t, int64(24<<30), ds[0].MemoryBytes)
	u, err := src.Usage(0)
	require.NoError(t, err)
	require.Equal(t, Usage{}, u, "a fake GPU reports nothing in use")
}

func TestOwnerFromCgroup(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, content, job string
	}{
		{"v2", "0::/system.slice/bmaas.service/n-1-01JABCDEF-r0-a2@4242\n", "01JABCDEF"},
		{"v2 taken name", "0::/bmaas/n-1-01JXYZ-r3-a1.1@77\n", "01JXYZ"},
		{"v1 memory", "12:cpu,cpuacct:/x\n9:memory:/agent/n-1-job-with-dashes-r0-a1@5\n", "job-with-dashes"},
		{"another node", "0::/n-2-01JABCDEF-r0-a2@4242\n", ""},
		{"no task", "0::/user.slice/session-1.scope\n", ""},
	}
	for _, tt := range tests {
		job, ok := ownerFromCgroup("n-1", tt.content)
		require.Equal(t, tt.job != "", ok, tt.name)
		require.Equal(t, tt.job, job, tt.name)
	}
	_, ok := CgroupOwner("n-1")(0)
	require.False(t, ok, "no process 0")
}

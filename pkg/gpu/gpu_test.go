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

	reg := prometheus.NewRegistry()
	reg.MustRegister(NewCollector(src, "n1", ds))
	require.Equal(t, 6, testutil.CollectAndCount(reg))
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP bmaas_gpu_utilization_ratio Fraction of time a kernel ran on the GPU over the last sample period.
# TYPE bmaas_gpu_utilization_ratio gauge
bmaas_gpu_utilization_ratio{index="0",model="NVIDIA H200",node="n1",uuid="GPU-a"} 0.5
bmaas_gpu_utilization_ratio{index="1",model="NVIDIA H200",node="n1",uuid="GPU-b"} 0.5
`), "bmaas_gpu_utilization_ratio"))
}

func TestDiscoverWithoutDriver(t *testing.T) {
	t.Parallel()
	src, isNVML, err := Discover("n1", 0, slog.New(slog.DiscardHandler))
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
	fake, _, err := Discover("n1", 3, nil)
	require.NoError(t, err)
	ds, _ := fake.Devices()
	require.Len(t, ds, 3)
}

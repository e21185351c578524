package gpu

import (
	"fmt"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
)

// Library is the part of NVML the source uses (nvml.Interface has it).
type Library interface {
	Init() nvml.Return
	Shutdown() nvml.Return
	DeviceGetCount() (int, nvml.Return)
	DeviceGetHandleByIndex(int) (nvml.Device, nvml.Return)
}

// NVML reads GPUs through the NVIDIA management library.
type NVML struct {
	lib Library
}

// OpenNVML loads and initialises NVML; ErrNoDriver when it is absent.
func OpenNVML() (*NVML, error) { return openNVML(nvml.New()) }

func openNVML(lib Library) (*NVML, error) {
	switch ret := lib.Init(); ret {
	case nvml.SUCCESS:
		return &NVML{lib: lib}, nil
	case nvml.ERROR_LIBRARY_NOT_FOUND, nvml.ERROR_DRIVER_NOT_LOADED:
		return nil, fmt.Errorf("%w: %s", ErrNoDriver, nvml.ErrorString(ret))
	default:
		return nil, fmt.Errorf("nvml init: %s", nvml.ErrorString(ret))
	}
}

// Devices lists every GPU.
func (n *NVML) Devices() ([]Device, error) {
	count, ret := n.lib.DeviceGetCount()
	if ret != nvml.SUCCESS {
		return nil, fmt.Errorf("nvml device count: %s", nvml.ErrorString(ret))
	}
	out := make([]Device, 0, count)
	for i := range count {
		d, ret := n.lib.DeviceGetHandleByIndex(i)
		if ret != nvml.SUCCESS {
			return nil, fmt.Errorf("nvml device %d: %s", i, nvml.ErrorString(ret))
		}
		uuid, ret := d.GetUUID()
		if ret != nvml.SUCCESS {
			return nil, fmt.Errorf("nvml device %d uuid: %s", i, nvml.ErrorString(ret))
		}
		name, ret := d.GetName()
		if ret != nvml.SUCCESS {
			return nil, fmt.Errorf("nvml device %d name: %s", i, nvml.ErrorString(ret))
		}
		mem, ret := d.GetMemoryInfo()
		if ret != nvml.SUCCESS {
			return nil, fmt.Errorf("nvml device %d memory: %s", i, nvml.ErrorString(ret))
		}
		out = append(out, Device{Index: i, UUID: uuid, Model: name, MemoryBytes: int64(mem.Total)})
	}
	return out, nil
}

// Usage reads a GPU's utilisation and memory in use.
func (n *NVML) Usage(index int) (Usage, error) {
	d, ret := n.lib.DeviceGetHandleByIndex(index)
	if ret != nvml.SUCCESS {
		return Usage{}, fmt.Errorf("nvml device %d: %s", index, nvml.ErrorString(ret))
	}
	u, ret := d.GetUtilizationRates()
	if ret != nvml.SUCCESS {
		return Usage{}, fmt.Errorf("nvml device %d utilization: %s", index, nvml.ErrorString(ret))
	}
	mem, ret := d.GetMemoryInfo()
	if ret != nvml.SUCCESS {
		return Usage{}, fmt.Errorf("nvml device %d memory: %s", index, nvml.ErrorString(ret))
	}
	return Usage{Utilization: float64(u.Gpu) / 100, MemoryUsedBytes: int64(mem.Used)}, nil
}

// Processes lists the compute processes on a GPU with the memory each
// holds (0 where the driver does not say, as under some virtualisation).
func (n *NVML) Processes(index int) ([]Process, error) {
	d, ret := n.lib.DeviceGetHandleByIndex(index)
	if ret != nvml.SUCCESS {
		return nil, fmt.Errorf("nvml device %d: %s", index, nvml.ErrorString(ret))
	}
	ps, ret := d.GetComputeRunningProcesses()
	if ret != nvml.SUCCESS {
		return nil, fmt.Errorf("nvml device %d processes: %s", index, nvml.ErrorString(ret))
	}
	out := make([]Process, len(ps))
	for i, p := range ps {
		out[i] = Process{PID: p.Pid}
		if p.UsedGpuMemory != notAvailable {
			out[i].MemoryBytes = int64(p.UsedGpuMemory)
		}
	}
	return out, nil
}

// notAvailable is NVML_VALUE_NOT_AVAILABLE, what a process's memory reads
// when the driver cannot say.
const notAvailable = ^uint64(0)

// Close shuts NVML down.
func (n *NVML) Close() { _ = n.lib.Shutdown() }

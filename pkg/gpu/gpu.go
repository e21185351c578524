// Package gpu discovers a node's GPUs: through NVML (go-nvml, loaded at
// run time, so a machine without the driver runs without GPUs) or, for
// tests and simulations, as fake devices. Both implement Source; Collector
// exports per-GPU utilisation and memory use, and the GPU memory each
// task's processes use, as Prometheus gauges.
package gpu

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
)

// ErrNoDriver means NVML is not installed on this machine.
var ErrNoDriver = errors.New("nvml library not found")

// Device is one GPU.
type Device struct {
	Index       int
	UUID        string
	Model       string
	MemoryBytes int64
	Fake        bool
}

// Usage is a GPU's current load.
type Usage struct {
	// Utilization is the fraction of time a kernel ran over the last
	// sample period, 0 to 1.
	Utilization     float64
	MemoryUsedBytes int64
}

// Process is one process that holds memory on a GPU.
type Process struct {
	PID         uint32
	MemoryBytes int64
}

// ProcessSource is a Source that also lists the processes on a GPU and
// the memory each holds (NVML does; fake GPUs run none).
type ProcessSource interface {
	Processes(index int) ([]Process, error)
}

// Source lists GPUs and reads their usage.
type Source interface {
	Devices() ([]Device, error)
	Usage(index int) (Usage, error)
	// Close releases the source.
	Close()
}

// Fake simulates N GPUs of MemoryBytes each (DefaultFakeMemory when 0),
// model "Fake GPU", with UUIDs derived from the node name so that they are
// stable across restarts.
type Fake struct {
	Node        string
	N           int
	MemoryBytes int64
}

// DefaultFakeMemory is a simulated GPU's memory unless one is given.
const DefaultFakeMemory = 16 << 30

// FakeModel is the model name of simulated GPUs.
const FakeModel = "Fake GPU"

// Devices lists the simulated GPUs.
func (f Fake) Devices() ([]Device, error) {
	out := make([]Device, f.N)
	for i := range out {
		sum := sha256.Sum256(fmt.Appendf(nil, "%s/%d", f.Node, i))
		uuid := fmt.Sprintf("GPU-%x-%x-%x-%x-%x", sum[0:4], sum[4:6], sum[6:8], sum[8:10], sum[10:16])
		mem := f.MemoryBytes
		if mem <= 0 {
			mem = DefaultFakeMemory
		}
		out[i] = Device{Index: i, UUID: uuid, Model: FakeModel, MemoryBytes: mem, Fake: true}
	}
	return out, nil
}

// Usage of a simulated GPU is always zero.
func (f Fake) Usage(index int) (Usage, error) {
	if index < 0 || index >= f.N {
		return Usage{}, fmt.Errorf("fake gpu %d: no such device", index)
	}
	return Usage{}, nil
}

// Close does nothing.
func (Fake) Close() {}

// Discover opens the node's GPU source: fake GPUs of fakeMemory bytes
// each when fake > 0, else NVML. Without the NVML library it returns nil
// and logs once at info: the node runs without GPUs. The bool reports
// whether the source is NVML.
func Discover(node string, fake int, fakeMemory int64, log *slog.Logger) (Source, bool, error) {
	if fake > 0 {
		return Fake{Node: node, N: fake, MemoryBytes: fakeMemory}, false, nil
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	src, err := OpenNVML()
	if errors.Is(err, ErrNoDriver) {
		log.Info("no nvidia driver; running without gpus")
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	return src, true, nil
}

package placement

import (
	"fmt"
	"math/bits"
	"strings"
)

// explain says why r does not fit now, and whether it never can: no node
// passes the filters, or none could hold one worker even when empty, or
// the whole cluster empty could not hold the gang.
func (c *Cluster) explain(r *Request, model string) (reason string, never bool) {
	var maxCPU, maxMem int64
	maxGPU, matching, slots := 0, 0, 0
	// Nodes that pass pool and selector, and the most GPUs among them, so
	// that a GPU request on a cluster without (enough) GPUs says how many.
	staticNodes, staticGPU := 0, 0
	// For a share: the largest matching GPU, and the most any has free now.
	var largestGPU, mostFree int64
	share := r.GPUs == 0 && r.GPUMemory > 0
	for i := range c.Nodes {
		n := &c.Nodes[i]
		if !static(n, r) {
			continue
		}
		g := len(n.GPUs)
		if model != "" {
			g = bits.OnesCount64(modelMask(n, model))
		}
		staticNodes, staticGPU = staticNodes+1, max(staticGPU, g)
		if (r.GPUs > 0 || share) && g == 0 {
			continue
		}
		matching++
		maxCPU, maxMem, maxGPU = max(maxCPU, n.CPU), max(maxMem, n.Memory), max(maxGPU, g)
		if share {
			shares := 0
			for p, gpu := range n.GPUs {
				if model == "" || contains(n.models[p], model) {
					largestGPU, mostFree = max(largestGPU, gpu.Memory), max(mostFree, n.gpuFree(p))
					shares += int(gpu.Memory / r.GPUMemory)
				}
			}
			g = shares
		}
		slots += workersFit(n.CPU, n.Memory, g, r)
	}
	switch {
	case matching == 0 && staticNodes > 0 && share && model == "":
		return fmt.Sprintf("Unschedulable: needs %s on one GPU, no matching node has a GPU", bytesText(r.GPUMemory)), true
	case matching == 0 && staticNodes > 0 && r.GPUs > 0 && model == "":
		return fmt.Sprintf("Unschedulable: needs %d %s, largest node has %d", r.GPUs, gpuNoun(r), staticGPU), true
	case matching == 0:
		return "Unschedulable: " + noMatch(r), true
	case share && r.GPUMemory > largestGPU:
		return fmt.Sprintf("Unschedulable: needs %s on one GPU, the largest GPU has %s", bytesText(r.GPUMemory), bytesText(largestGPU)), true
	case int64(r.GPUs) > int64(maxGPU):
		return fmt.Sprintf("Unschedulable: needs %d %s, largest node has %d", r.GPUs, gpuNoun(r), maxGPU), true
	case r.CPU > maxCPU:
		return fmt.Sprintf("Unschedulable: needs %s CPU, largest node has %s", millis(r.CPU), millis(maxCPU)), true
	case r.Memory > maxMem:
		return fmt.Sprintf("Unschedulable: needs %s of memory, largest node has %s", bytesText(r.Memory), bytesText(maxMem)), true
	case slots == 0:
		return fmt.Sprintf("Unschedulable: no node has %s at once", need(r)), true
	case slots < r.Workers:
		return fmt.Sprintf("Unschedulable: needs %d workers of %s, the matching nodes hold %d even when empty", r.Workers, need(r), slots), true
	}
	if share && mostFree < r.GPUMemory {
		return fmt.Sprintf("Waiting for capacity: needs %s on one GPU, the most free on any GPU is %s", bytesText(r.GPUMemory), bytesText(mostFree)), false
	}
	return fmt.Sprintf("Waiting for capacity: needs %d worker(s) of %s on %d matching node(s)", r.Workers, need(r), matching), false
}

// workersFit counts the workers of r that cpu, mem and gpus hold.
func workersFit(cpu, mem int64, gpus int, r *Request) int {
	n := 1 << 30
	if r.CPU > 0 {
		n = min(n, int(cpu/r.CPU))
	}
	if r.Memory > 0 {
		n = min(n, int(mem/r.Memory))
	}
	if r.GPUs > 0 {
		n = min(n, gpus/r.GPUs)
	} else if r.GPUMemory > 0 {
		n = min(n, gpus) // gpus counts the shares the node's GPUs hold
	}
	return min(n, r.Workers)
}

func noMatch(r *Request) string {
	var parts []string
	if r.Pool != "" {
		parts = append(parts, fmt.Sprintf("pool %q", r.Pool))
	}
	if len(r.Selector) > 0 {
		kv := make([]string, 0, len(r.Selector))
		for k, v := range r.Selector {
			kv = append(kv, k+"="+v)
		}
		parts = append(parts, "node_selector "+strings.Join(sorted(kv), ","))
	}
	if r.GPUs > 0 || r.GPUMemory > 0 {
		parts = append(parts, gpuNoun(r))
	}
	if len(parts) == 0 {
		return "no node is registered"
	}
	return "no node matches " + strings.Join(parts, ", ")
}

func gpuNoun(r *Request) string {
	if r.GPUModel != "" {
		return fmt.Sprintf("GPUs of model %q", r.GPUModel)
	}
	return "GPUs"
}

func need(r *Request) string {
	s := fmt.Sprintf("%s CPU, %s memory", millis(r.CPU), bytesText(r.Memory))
	if r.GPUs > 0 {
		s += fmt.Sprintf(", %d %s", r.GPUs, gpuNoun(r))
	} else if r.GPUMemory > 0 {
		s += fmt.Sprintf(", %s on one GPU", bytesText(r.GPUMemory))
	}
	return s
}

func millis(m int64) string {
	if m%1000 == 0 {
		return fmt.Sprintf("%d", m/1000)
	}
	return fmt.Sprintf("%.3g", float64(m)/1000)
}

func bytesText(b int64) string {
	const gi, mi = 1 << 30, 1 << 20
	switch {
	case b >= gi:
		return fmt.Sprintf("%.3gGiB", float64(b)/gi)
	case b >= mi:
		return fmt.Sprintf("%.3gMiB", float64(b)/mi)
	}
	return fmt.Sprintf("%dB", b)
}

func sorted(s []string) []string {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
	return s
}

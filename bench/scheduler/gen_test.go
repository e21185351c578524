// Package scheduler benchmarks placement: the pure decision path of
// services/scheduler/placement on 5,000 simulated nodes and 10,000 queued
// jobs, and the scheduler's leader placing the same queue with every
// binding persisted to an embedded etcd through the fenced transaction.
//
//	go test -run '^$' -bench . -benchtime 3x ./bench/scheduler/
package scheduler

import (
	"fmt"
	"math/rand/v2"

	schedulerv1 "github.com/bmaas/bmaas/api/bmaas/scheduler/v1"
	"github.com/bmaas/bmaas/services/scheduler/placement"
)

const (
	numNodes = 5000
	numJobs  = 10000
	gib      = 1 << 30
)

// genNodes is a mixed fleet: 80% CPU nodes (32 cores, 128 GiB), 20% GPU
// nodes (64 cores, 512 GiB, 8 GPUs of two models); three zones, two pools.
func genNodes() []*schedulerv1.Node {
	rng := rand.New(rand.NewPCG(1, 2))
	out := make([]*schedulerv1.Node, numNodes)
	for i := range out {
		n := &schedulerv1.Node{Name: fmt.Sprintf("node-%05d", i), Host: fmt.Sprintf("10.0.%d.%d", i/250, i%250),
			CpuMillis: 32000, MemoryBytes: 128 * gib,
			Labels: map[string]string{"zone": []string{"a", "b", "c"}[rng.IntN(3)]}}
		if i%10 == 0 {
			n.Pool = "batch"
		}
		if i%5 == 0 {
			n.CpuMillis, n.MemoryBytes = 64000, 512*gib
			model := []string{"NVIDIA A100-SXM4-80GB", "Tesla T4"}[rng.IntN(2)]
			for g := range 8 {
				n.Gpus = append(n.Gpus, &schedulerv1.Gpu{Index: int32(g), Model: model})
			}
		}
		out[i] = n
	}
	return out
}

// genJobs is a mixed queue: small CPU jobs, GPU jobs, gangs, jobs with a
// node selector or a pool, four priorities, a third preemptible. scale
// multiplies CPU and memory (scale 4 saturates the fleet).
func genJobs(scale int64) []*schedulerv1.JobSpec {
	rng := rand.New(rand.NewPCG(3, 4))
	out := make([]*schedulerv1.JobSpec, numJobs)
	for i := range out {
		s := &schedulerv1.JobSpec{Model: "m", Workers: 1, Priority: int32(rng.IntN(4)), Preemptible: i%3 == 0,
			Resources: &schedulerv1.Resources{CpuMillis: scale * int64(500+rng.IntN(4)*500), MemoryBytes: scale * int64(1+rng.IntN(4)) * gib}}
		switch k := rng.IntN(100); {
		case k < 15:
			s.Resources.Gpus = int32(1 + rng.IntN(2))
		case k < 20:
			s.Workers, s.Resources.Gpus = int32(2+rng.IntN(3)), 2
			if k < 17 {
				s.Resources.GpuModel = "A100"
			}
		case k < 25:
			s.NodeSelector = map[string]string{"zone": "b"}
		case k < 28:
			s.Pool = "batch"
		}
		out[i] = s
	}
	return out
}

// toPlacement converts nodes as the leader does.
func toPlacement(nodes []*schedulerv1.Node) []placement.Node {
	out := make([]placement.Node, len(nodes))
	for i, n := range nodes {
		out[i] = placement.Node{Name: n.Name, Pool: n.Pool, Labels: n.Labels, CPU: n.CpuMillis, Memory: n.MemoryBytes}
		for _, g := range n.Gpus {
			out[i].GPUs = append(out[i].GPUs, placement.GPU{Index: g.Index, Model: g.Model})
		}
	}
	return out
}

func toRequests(specs []*schedulerv1.JobSpec) []placement.Request {
	out := make([]placement.Request, len(specs))
	for i, s := range specs {
		r := s.Resources
		out[i] = placement.Request{Job: fmt.Sprintf("job-%05d", i), Priority: s.Priority, Workers: int(s.Workers),
			CPU: r.CpuMillis, Memory: r.MemoryBytes, GPUs: int(r.Gpus), GPUModel: r.GpuModel, Pool: s.Pool,
			Selector: s.NodeSelector, Preemptible: s.Preemptible}
	}
	return out
}

package gateway

import (
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
	schedulerv1 "github.com/bmaas/bmaas/api/bmaas/scheduler/v1"
)

// What a replica process needs beyond its model, and how much a loaded
// model takes per byte of its file, measured on sandboxed `bmaas replica`
// processes (2-vCPU machine, 2026-12-05): a native iris logistic
// regression or MLP holds 7-15 MiB of anonymous memory (53-60 MiB RSS,
// 46 MiB of it the binary's shared file pages), idle or loaded; a native
// 1.2 MB digits MLP 9 MiB; a 68 MB ONNX MLP 365 MiB loaded and 693 MiB
// after its first requests (the pure-Go ONNX runtime allocates per run).
const (
	replicaBaseMemory = 128 << 20
	onnxMemoryFactor  = 12
	modelMemoryFactor = 3
)

// replicaResources is what each replica of version mv requests: the
// deployment's resources, with the gateway's defaults where unset.
//
// CPU: an idle replica uses about 0.1 % of a core, and 0.03 cores at 100
// one-row requests a second, so placement reserves a small share
// (cpu_millis, 250m by default) and the replica may burst to
// cpu_limit_millis (one core by default) when the node has CPU idle: a
// CFS quota of 250m held a saturated replica's p99 at 53 ms against 9 ms
// at one core, and 100m at 70-84 ms.
//
// Memory is a hard limit, so it leaves room for the model to load and
// run: at least replica_memory_bytes (256 MiB), and 128 MiB plus 12 times
// an ONNX file's size (3 times a native one's) for a large model.
func (c *Config) replicaResources(spec *schedulerv1.Resources, mv *registryv1.ModelVersion) *schedulerv1.Resources {
	r := &schedulerv1.Resources{}
	if spec != nil {
		r = proto.Clone(spec).(*schedulerv1.Resources)
	}
	if r.CpuMillis == 0 {
		r.CpuMillis = c.ReplicaCPUMillis
	}
	if r.CpuLimitMillis == 0 && c.ReplicaCPULimitMillis > r.CpuMillis {
		r.CpuLimitMillis = c.ReplicaCPULimitMillis
	}
	if r.MemoryBytes == 0 {
		factor := int64(modelMemoryFactor)
		if mv.GetFormat() == registryv1.ModelFormat_MODEL_FORMAT_ONNX {
			factor = onnxMemoryFactor
		}
		need := replicaBaseMemory + factor*mv.GetSizeBytes()
		r.MemoryBytes = max(c.ReplicaMemoryBytes, (need+1<<20-1)/(1<<20)*(1<<20))
	}
	return r
}

// withDefaults is spec with each field it leaves unset taken from def (a
// runtime's resources): a deployment's resources win field by field over
// its runtime's, and replicaResources fills what both leave unset.
func withDefaults(spec, def *schedulerv1.Resources) *schedulerv1.Resources {
	if def == nil {
		return spec
	}
	out := &schedulerv1.Resources{}
	if spec != nil {
		out = proto.Clone(spec).(*schedulerv1.Resources)
	}
	m := out.ProtoReflect()
	def.ProtoReflect().Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if !m.Has(fd) {
			m.Set(fd, v)
		}
		return true
	})
	return out
}

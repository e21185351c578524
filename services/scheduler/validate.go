package scheduler

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
	schedulerv1 "github.com/bmaas/bmaas/api/bmaas/scheduler/v1"
	"github.com/bmaas/bmaas/pkg/apierr"
	"github.com/bmaas/bmaas/pkg/iam"
	"github.com/bmaas/bmaas/pkg/ml/train"
)

// Limits of a sane job spec.
const (
	maxCPUMillis   = 1_000_000 // a thousand cores
	maxMemoryBytes = 64 << 40
	maxGPUs        = 64
	maxWorkers     = 1024
	maxPriority    = 1000
	maxRestarts    = 100
	maxTimeout     = 30 * 24 * time.Hour
	// maxGrace bounds a job's time between SIGTERM and SIGKILL (the
	// agents' --trainer-agent.stop-grace has the same bound).
	maxGrace = time.Hour
)

var (
	modelName = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)
	labelKey  = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9._/-]{0,61}[A-Za-z0-9])?$`)
	labelVal  = regexp.MustCompile(`^([A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?)?$`)
)

// normalize checks spec's own fields and fills the defaults in place.
func (s *Scheduler) normalize(spec *schedulerv1.JobSpec) error {
	if len(spec.Name) > 200 {
		return apierr.Invalid("spec.name", "at most 200 characters")
	}
	if err := iam.CheckQualifiedMatch("spec.model", spec.Model, modelName); err != nil {
		return err
	}
	switch rt := spec.Runtime.(type) {
	case *schedulerv1.JobSpec_Builtin:
		if err := checkBuiltin(rt.Builtin); err != nil {
			return err
		}
	case *schedulerv1.JobSpec_Process:
		if rt.Process.Command == "" {
			return apierr.Invalid("spec.process.command", "required")
		}
		if rt.Process.DatasetVersion < 0 {
			return apierr.Invalid("spec.process.dataset_version", "must not be negative")
		}
	case *schedulerv1.JobSpec_Serving:
		if err := checkServing(rt.Serving); err != nil {
			return err
		}
	default:
		return apierr.Invalid("spec.runtime", "set builtin, process or serving")
	}
	if err := s.checkResources(spec); err != nil {
		return err
	}
	switch {
	case spec.Workers < 0 || spec.Workers > maxWorkers:
		return apierr.Invalid("spec.workers", "must be within 1 and %d, got %d", maxWorkers, spec.Workers)
	case spec.Priority < -maxPriority || spec.Priority > maxPriority:
		return apierr.Invalid("spec.priority", "must be within %d and %d, got %d", -maxPriority, maxPriority, spec.Priority)
	case spec.MaxRestarts < 0 || spec.MaxRestarts > maxRestarts:
		return apierr.Invalid("spec.max_restarts", "must be within 0 and %d, got %d", maxRestarts, spec.MaxRestarts)
	case spec.TimeoutSeconds < 0 || spec.TimeoutSeconds > int64(maxTimeout/time.Second):
		return apierr.Invalid("spec.timeout_seconds", "must be within 0 (none) and %d, got %d", int64(maxTimeout/time.Second), spec.TimeoutSeconds)
	case spec.TerminationGraceSeconds < 0 || spec.TerminationGraceSeconds > int32(maxGrace/time.Second):
		return apierr.Invalid("spec.termination_grace_seconds", "must be within 0 (the agent's default) and %d, got %d",
			int32(maxGrace/time.Second), spec.TerminationGraceSeconds)
	case spec.CheckpointInterval < 0:
		return apierr.Invalid("spec.checkpoint_interval", "must not be negative, got %d", spec.CheckpointInterval)
	case spec.Pool != "" && !labelVal.MatchString(spec.Pool):
		return apierr.Invalid("spec.pool", "not a valid pool name: %q", spec.Pool)
	case spec.GetProcess().GetNoNetwork() && spec.Workers > 1:
		return apierr.Invalid("spec.process.no_network", "a job of %d workers needs the network for its workers to meet", spec.Workers)
	}
	spec.Workers = max(spec.Workers, 1)
	spec.CheckpointInterval = max(spec.CheckpointInterval, 1)
	if err := checkLabels("spec.labels", spec.Labels); err != nil {
		return err
	}
	return checkLabels("spec.node_selector", spec.NodeSelector)
}

func checkBuiltin(b *schedulerv1.BuiltinRuntime) error {
	if b.Algorithm == "" {
		return apierr.Invalid("spec.builtin.algorithm", "required (known: %v)", train.Algorithms())
	}
	if _, err := train.ParseParams(b.Algorithm, b.Hyperparameters); err != nil {
		if errors.Is(err, train.ErrUnknownAlgorithm) {
			return apierr.Invalid("spec.builtin.algorithm", "%v", err)
		}
		return apierr.Invalid("spec.builtin.hyperparameters", "%v", err)
	}
	switch {
	case b.Dataset == "":
		return apierr.Invalid("spec.builtin.dataset", "required")
	case b.DatasetVersion < 0:
		return apierr.Invalid("spec.builtin.dataset_version", "must not be negative (0 is the latest)")
	case b.TestFraction < 0 || b.TestFraction >= 1:
		return apierr.Invalid("spec.builtin.test_fraction", "must be within 0 and 1, got %g", b.TestFraction)
	case b.ValidationFraction < 0 || b.ValidationFraction >= 1:
		return apierr.Invalid("spec.builtin.validation_fraction", "must be within 0 and 1, got %g", b.ValidationFraction)
	case b.TestFraction+b.ValidationFraction >= 1:
		return apierr.Invalid("spec.builtin.validation_fraction", "test and validation fractions leave no training data")
	}
	return nil
}

// checkServing checks a model-server replica: a long-running job that
// serves one model version until it is cancelled.
func checkServing(sv *schedulerv1.ServingRuntime) error {
	switch {
	case sv.Deployment == "":
		return apierr.Invalid("spec.serving.deployment", "required")
	case sv.Version <= 0:
		return apierr.Invalid("spec.serving.version", "must be positive, got %d", sv.Version)
	case sv.MaxBatchSize < 0:
		return apierr.Invalid("spec.serving.max_batch_size", "must not be negative, got %d", sv.MaxBatchSize)
	case sv.MaxQueueDelayMicros < 0:
		return apierr.Invalid("spec.serving.max_queue_delay_micros", "must not be negative, got %d", sv.MaxQueueDelayMicros)
	}
	return nil
}

func (s *Scheduler) checkResources(spec *schedulerv1.JobSpec) error {
	if spec.Resources == nil {
		spec.Resources = &schedulerv1.Resources{}
	}
	r := spec.Resources
	switch {
	case r.CpuMillis < 0 || r.CpuMillis > maxCPUMillis:
		return apierr.Invalid("spec.resources.cpu_millis", "must be within 0 and %d, got %d", maxCPUMillis, r.CpuMillis)
	case r.CpuLimitMillis < 0 || r.CpuLimitMillis > maxCPUMillis:
		return apierr.Invalid("spec.resources.cpu_limit_millis", "must be within 0 and %d, got %d", maxCPUMillis, r.CpuLimitMillis)
	case r.MemoryBytes < 0 || r.MemoryBytes > maxMemoryBytes:
		return apierr.Invalid("spec.resources.memory_bytes", "must be within 0 and %d, got %d", int64(maxMemoryBytes), r.MemoryBytes)
	case r.Gpus < 0 || r.Gpus > maxGPUs:
		return apierr.Invalid("spec.resources.gpus", "must be within 0 and %d, got %d", maxGPUs, r.Gpus)
	case r.GpuMemoryBytes < 0:
		return apierr.Invalid("spec.resources.gpu_memory_bytes", "must not be negative, got %d", r.GpuMemoryBytes)
	case r.GpuMemoryBytes > 0 && r.Gpus > 0:
		return apierr.Invalid("spec.resources.gpu_memory_bytes", "a share of one GPU is asked with gpus = 0, got gpus = %d", r.Gpus)
	case r.GpuModel != "" && r.Gpus == 0 && r.GpuMemoryBytes == 0:
		return apierr.Invalid("spec.resources.gpu_model", "set with gpus = 0 and gpu_memory_bytes = 0")
	}
	if r.CpuMillis == 0 {
		r.CpuMillis = s.cfg.DefaultCPUMillis
	}
	if r.MemoryBytes == 0 {
		r.MemoryBytes = s.cfg.DefaultMemoryBytes
	}
	return nil
}

func checkLabels(field string, m map[string]string) error {
	for k, v := range m {
		if !labelKey.MatchString(k) {
			return apierr.Invalid(field, "bad key %q", k)
		}
		if !labelVal.MatchString(v) {
			return apierr.Invalid(field+"."+k, "bad value %q", v)
		}
	}
	return nil
}

// checkRegistry asks the registry that the model and the dataset version
// exist, and pins a "latest" dataset version (0) to its number.
func (s *Scheduler) checkRegistry(ctx context.Context, spec *schedulerv1.JobSpec) error {
	if s.registry == nil {
		return nil
	}
	reg, err := s.registry()
	if err != nil {
		return fmt.Errorf("registry: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	wait := grpc.WaitForReady(true)
	if _, err := reg.GetModel(ctx, &registryv1.GetModelRequest{Name: spec.Model}, wait); err != nil {
		return registryErr("spec.model", fmt.Sprintf("model %q", spec.Model), err)
	}
	field, ds, ver := "spec.builtin", "", (*int64)(nil)
	switch rt := spec.Runtime.(type) {
	case *schedulerv1.JobSpec_Builtin:
		ds, ver = rt.Builtin.Dataset, &rt.Builtin.DatasetVersion
	case *schedulerv1.JobSpec_Process:
		field, ds, ver = "spec.process", rt.Process.Dataset, &rt.Process.DatasetVersion
	}
	if ds == "" {
		return nil
	}
	ref := "latest"
	if *ver > 0 {
		ref = strconv.FormatInt(*ver, 10)
	}
	resp, err := reg.GetDatasetVersion(ctx, &registryv1.GetDatasetVersionRequest{Dataset: ds, Version: ref}, wait)
	if err != nil {
		return registryErr(field+".dataset", fmt.Sprintf("dataset %q version %s", ds, ref), err)
	}
	*ver = resp.GetVersion().GetVersion()
	if b := spec.GetBuiltin(); b != nil && b.TargetColumn != "" && resp.GetVersion().GetStats() != nil {
		for _, c := range resp.GetVersion().GetStats().GetColumns() {
			if c.GetName() == b.TargetColumn {
				return nil
			}
		}
		return apierr.Invalid("spec.builtin.target_column", "dataset %q has no column %q", ds, b.TargetColumn)
	}
	return nil
}

// registryErr turns the registry's NotFound into an invalid field.
func registryErr(field, what string, err error) error {
	if status.Code(err) == codes.NotFound {
		return apierr.Invalid(field, "%s not found in the registry", what)
	}
	return fmt.Errorf("ask the registry for %s: %w", what, err)
}

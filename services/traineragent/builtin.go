package traineragent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
	schedulerv1 "github.com/bmaas/bmaas/api/bmaas/scheduler/v1"
	"github.com/bmaas/bmaas/pkg/ml/artifact"
	"github.com/bmaas/bmaas/pkg/ml/dataset"
	"github.com/bmaas/bmaas/pkg/ml/train"
)

// fetchTimeout bounds each download or upload of a task's inputs and
// outputs.
const fetchTimeout = 5 * time.Minute

// runBuiltin trains with the native engine: dataset from the registry,
// resumed from the job's checkpoint if there is one (else from the one of
// the job named in resume_from_job, if any), checkpoints uploaded
// every checkpoint_interval steps, and the artifact registered by rank 0.
func (w *worker) runBuiltin(sk *sink, rt *schedulerv1.BuiltinRuntime) (int64, error) {
	ctx := w.ctx
	reg := w.s.registry()
	var csv bytes.Buffer
	fctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	dv, err := reg.downloadDataset(fctx, rt.Dataset, rt.DatasetVersion, &csv)
	cancel()
	if err != nil {
		return 0, fmt.Errorf("download dataset %s: %w", rt.Dataset, err)
	}
	sk.logf("dataset %s version %d: %d bytes", dv.GetDataset(), dv.GetVersion(), csv.Len())
	frame, err := dataset.Read(&csv, dataset.ReadOptions{})
	if err != nil {
		return 0, fmt.Errorf("read dataset %s: %w", rt.Dataset, err)
	}
	spec := train.RuntimeSpec(rt)
	var ck bytes.Buffer
	fctx, cancel = context.WithTimeout(ctx, fetchTimeout)
	cp, err := reg.downloadCheckpoint(fctx, w.a.JobId, &ck)
	if errors.Is(err, errNotFound) && rt.ResumeFromJob != "" {
		// No checkpoint of its own yet: start where the named job ended.
		ck.Reset()
		if cp, err = reg.downloadCheckpoint(fctx, rt.ResumeFromJob, &ck); err == nil {
			sk.logf("starting from the checkpoint of job %s", rt.ResumeFromJob)
		} else if errors.Is(err, errNotFound) {
			sk.logf("job %s left no checkpoint; training from the start", rt.ResumeFromJob)
		}
	}
	cancel()
	if err != nil && !errors.Is(err, errNotFound) {
		return 0, fmt.Errorf("download checkpoint: %w", err)
	}
	w.running()
	// A job has one checkpoint: rank 0 saves it; every rank resumes from it.
	every := max(1, int(w.a.GetSpec().GetCheckpointInterval()))
	if w.a.Rank != 0 {
		every = 0
	}
	var step int64
	cb := train.Callbacks{
		CheckpointEvery: every,
		OnEvent: func(e train.Event) {
			if !e.Final {
				step = int64(e.Step)
			}
			w.builtinEvent(sk, e, step)
		},
	}
	if every > 0 {
		cb.OnCheckpoint = func(_ context.Context, b []byte) error {
			w.uploadCheckpoint(sk, step, bytes.NewReader(b), map[string]string{"runtime": "builtin", "algorithm": spec.Algorithm})
			return nil
		}
	}
	var m *artifact.Model
	if cp != nil {
		sk.logf("resuming from the checkpoint of step %d", cp.Step)
		step = cp.Step
		w.checkpointed(cp.Step)
		m, err = train.Resume(ctx, spec, frame, ck.Bytes(), cb)
		if errors.Is(err, train.ErrCheckpoint) {
			sk.logf("checkpoint refused (%v); training from the start", err)
			step = 0
			m, err = train.Run(ctx, spec, frame, cb)
		}
	} else {
		m, err = train.Run(ctx, spec, frame, cb)
	}
	if err != nil {
		return 0, fmt.Errorf("train: %w", err)
	}
	if w.a.Rank != 0 || w.a.GetSpec().GetModel() == "" {
		return 0, nil
	}
	return w.registerNative(sk, m, rt, dv)
}

// builtinEvent reports an epoch, round or the final metrics as a metrics
// line and in the task's status.
func (w *worker) builtinEvent(sk *sink, e train.Event, step int64) {
	line := map[string]any{"step": step, "split": e.Split, "attempt": w.a.Attempt}
	if e.Final {
		line["final"] = true
	}
	named := map[string]float64{}
	for k, v := range e.Metrics {
		line[k] = v
		named[metricName(e.Split, k)] = v
	}
	if b, err := json.Marshal(line); err == nil {
		sk.metric(b)
	}
	if e.Split == "train" && !e.Final {
		sk.logf("step %d: train loss %.6g", step, e.Metrics["loss"])
	}
	w.progress(step, named)
}

// uploadCheckpoint stores a checkpoint of step and reports whether it
// did; a failure is logged, not fatal (the task goes on and the next
// checkpoint may succeed). After the worker was stopped, the last upload
// gets the stop grace period; a fenced worker uploads nothing.
func (w *worker) uploadCheckpoint(sk *sink, step int64, body io.Reader, meta map[string]string) bool {
	if w.fenced.Load() {
		return false
	}
	ctx, cancel := context.WithTimeout(w.ctx, fetchTimeout)
	if w.ctx.Err() != nil {
		cancel()
		ctx, cancel = context.WithTimeout(context.Background(), w.grace())
	}
	defer cancel()
	hdr := &registryv1.UploadCheckpointHeader{JobId: w.a.JobId, Step: step, Rank: w.a.Rank, Metadata: meta,
		Project: w.a.GetSpec().GetProject()}
	if _, err := w.s.registry().uploadCheckpoint(ctx, hdr, body); err != nil {
		sk.logf("checkpoint of step %d not saved: %v", step, err)
		return false
	}
	w.checkpointed(step)
	return true
}

// registerNative uploads the artifact as a NATIVE version with its
// signature, training statistics, metrics, hyperparameters and lineage.
func (w *worker) registerNative(sk *sink, m *artifact.Model, rt *schedulerv1.BuiltinRuntime, dv *registryv1.DatasetVersion) (int64, error) {
	b, err := m.Marshal()
	if err != nil {
		return 0, fmt.Errorf("encode model: %w", err)
	}
	metrics := map[string]float64{}
	for _, x := range m.Proto.Metrics {
		metrics[metricName(x.Split, x.Name)] = x.Value
	}
	spec := &registryv1.ModelVersionSpec{
		Format: registryv1.ModelFormat_MODEL_FORMAT_NATIVE, Signature: m.Proto.Signature, Metrics: metrics,
		Hyperparameters: m.Proto.Hyperparameters, TrainingStats: m.Proto.TrainingStats, Filename: "model.bmaas",
		Description: fmt.Sprintf("%s trained by job %s", rt.Algorithm, w.a.JobId),
		Lineage:     &registryv1.Lineage{JobId: w.a.JobId, Dataset: rt.Dataset, DatasetVersion: dv.GetVersion()},
		Labels:      map[string]string{"job": w.a.JobId},
	}
	return w.register(sk, spec, bytes.NewReader(b))
}

// register creates the model version and returns its number.
func (w *worker) register(sk *sink, spec *registryv1.ModelVersionSpec, body io.Reader) (int64, error) {
	ctx, cancel := context.WithTimeout(w.ctx, fetchTimeout)
	defer cancel()
	v, err := w.s.registry().createVersion(ctx, w.a.GetSpec().GetModel(), spec, body)
	if err != nil {
		return 0, fmt.Errorf("register model version of %s: %w", w.a.GetSpec().GetModel(), err)
	}
	sk.logf("registered %s version %d (%s)", v.Model, v.Version, v.Status)
	return v.Version, nil
}

package evaluator

import (
	"context"
	"errors"
	"fmt"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/timestamppb"

	evaluatorv1 "github.com/bmaas/bmaas/api/bmaas/evaluator/v1"
	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
	"github.com/bmaas/bmaas/pkg/apierr"
	"github.com/bmaas/bmaas/pkg/events"
)

// versionsDurable is the consumer the replicas share: each READY event is
// handled by one of them.
const versionsDurable = "evaluator-versions"

// consumeVersions evaluates every version a training job produces as it
// becomes READY, until ctx is done.
func (e *Evaluator) consumeVersions(ctx context.Context) {
	filter := events.SubjectPrefix + "." + events.KindModel + ".*.version.ready"
	for ctx.Err() == nil {
		err := e.bus.SubscribeWith(ctx, events.StreamEvents, versionsDurable, filter, e.onVersionReady,
			events.WithRetryBackoff(200*time.Millisecond, 10*time.Second))
		if err != nil && ctx.Err() == nil {
			e.log.Warn("version consumer", "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}
}

// onVersionReady evaluates a trained version on its job's test split and
// on the datasets of its model's policy, then applies the promotion
// policy, once per version (autoOnce): a redelivered event, or one that
// races the leader's sweep, redoes nothing. An event for a version that
// another call is evaluating is acked; that call, or the next sweep if it
// fails, finishes the version.
func (e *Evaluator) onVersionReady(ctx context.Context, ev events.Event) error {
	v := &registryv1.ModelVersion{}
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(ev.Data, v); err != nil {
		e.log.Warn("undecodable version event", "key", ev.Key, "err", err)
		return nil
	}
	if !autoEligible(v) {
		return nil
	}
	_, err := e.autoOnce(ctx, v.Model, v.Version, v.Lineage.JobId)
	return err
}

// AutoEvaluate runs the automatic evaluations of one version and its
// promotion decision, unless they are done or under way elsewhere (then
// it returns nil at once).
func (e *Evaluator) AutoEvaluate(ctx context.Context, model string, version int64, jobID string) error {
	_, err := e.autoOnce(ctx, model, version, jobID)
	return err
}

// autoEvaluate runs the evaluations and the decision. Every step is keyed
// by version (and dataset version), so repeating it redoes nothing.
func (e *Evaluator) autoEvaluate(ctx context.Context, model string, version int64, jobID string) error {
	pol, err := e.GetEvaluationPolicy(ctx, model)
	if err != nil && !errors.Is(err, apierr.ErrNotFound) {
		return err
	}
	reqs := []*evaluatorv1.Evaluation{{Model: model, Version: itoa(version), JobId: jobID}}
	for _, d := range pol.GetDatasets() {
		reqs = append(reqs, &evaluatorv1.Evaluation{Model: model, Version: itoa(version), Dataset: d.Dataset, DatasetVersion: itoa(d.Version)})
	}
	var trigger string
	for _, r := range reqs {
		got, err := e.CreateEvaluation(ctx, r, TriggerAuto)
		if err != nil {
			if !inputError(err) {
				return fmt.Errorf("evaluate %s@%d: %w", model, version, err)
			}
			e.log.Warn("automatic evaluation refused", "model", model, "version", version, "dataset", r.Dataset, "job", r.JobId, "err", err)
			e.recordFailed(ctx, r, err)
			continue
		}
		if trigger == "" {
			trigger = got.Id
		}
	}
	if pol.GetPromotion() == nil {
		return nil
	}
	if trigger == "" {
		trigger = "auto"
	}
	_, err = e.Decide(ctx, model, version, pol.Promotion, "auto", trigger)
	if errors.Is(err, apierr.ErrAlreadyExists) {
		return nil
	}
	return err
}

// inputError reports errors that a retry would not fix.
func inputError(err error) bool {
	for _, c := range []error{apierr.ErrInvalidArgument, apierr.ErrFailedPrecondition, apierr.ErrNotFound, apierr.ErrResourceExhausted} {
		if errors.Is(err, c) {
			return true
		}
	}
	return grpcInputError(err)
}

// recordFailed stores a FAILED automatic evaluation so the refusal is
// visible; it is keyed like the evaluation it replaces.
func (e *Evaluator) recordFailed(ctx context.Context, r *evaluatorv1.Evaluation, cause error) {
	ev := &evaluatorv1.Evaluation{Model: r.Model, Version: r.Version, Dataset: r.Dataset, DatasetVersion: r.DatasetVersion,
		JobId: r.JobId, Trigger: TriggerAuto, RunsOn: "evaluator", State: evaluatorv1.EvaluationState_EVALUATION_STATE_FAILED,
		Message: cause.Error(), CreateTime: timestamppb.New(e.now()), CompleteTime: timestamppb.New(e.now())}
	ev.Id = fmt.Sprintf("%s-v%s-%s-failed", r.Model, r.Version, r.Dataset)
	if r.JobId != "" {
		ev.Id = fmt.Sprintf("%s-v%s-test-failed", r.Model, r.Version)
	}
	if _, err := e.record(ctx, &registryv1.ModelVersion{Model: r.Model}, ev); err != nil {
		e.log.Warn("record failed evaluation", "model", r.Model, "err", err)
	}
}

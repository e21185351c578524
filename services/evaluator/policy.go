package evaluator

import (
	"context"
	"errors"
	"fmt"
	"math"

	"google.golang.org/protobuf/types/known/timestamppb"

	evaluatorv1 "github.com/bmaas/bmaas/api/bmaas/evaluator/v1"
	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
	"github.com/bmaas/bmaas/pkg/apierr"
	"github.com/bmaas/bmaas/pkg/store"
)

// SetEvaluationPolicy stores a model's evaluation and promotion policy;
// with etag set it must match the stored one (compare and set).
func (e *Evaluator) SetEvaluationPolicy(ctx context.Context, p *evaluatorv1.EvaluationPolicy, etag string) (*evaluatorv1.EvaluationPolicy, error) {
	if p == nil || p.Model == "" {
		return nil, apierr.Invalid("policy.model", "required")
	}
	want, err := store.ParseEtag("etag", etag)
	if err != nil {
		return nil, err
	}
	if err := validatePolicy(p); err != nil {
		return nil, err
	}
	reg, err := e.registry()
	if err != nil {
		return nil, err
	}
	if _, err := reg.GetModel(ctx, &registryv1.GetModelRequest{Name: p.Model}); err != nil {
		return nil, err
	}
	for i, d := range p.Datasets {
		if _, err := reg.GetDataset(ctx, &registryv1.GetDatasetRequest{Name: d.Dataset}); err != nil {
			return nil, fmt.Errorf("policy.datasets[%d]: %w", i, err)
		}
	}
	key := policyKey(p.Model)
	cond := []store.Cond{{Key: key, Rev: want}}
	if want == 0 {
		cond = nil
	}
	p.Etag, p.UpdateTime = "", timestamppb.New(e.now())
	rev, err := e.st.Commit(ctx, cond, store.Put(key, p))
	if store.IsStale(err) {
		return nil, apierr.Conflict("policy of %q changed since etag %s", p.Model, etag)
	}
	if err != nil {
		return nil, err
	}
	p.Etag = store.Etag(rev)
	return p, nil
}

func validatePolicy(p *evaluatorv1.EvaluationPolicy) error {
	for i, d := range p.Datasets {
		if d.Dataset == "" {
			return apierr.Invalid(fmt.Sprintf("policy.datasets[%d].dataset", i), "required")
		}
		if d.Version < 0 {
			return apierr.Invalid(fmt.Sprintf("policy.datasets[%d].version", i), "must not be negative")
		}
	}
	pr := p.Promotion
	if pr == nil {
		return nil
	}
	switch {
	case pr.TargetAlias == "":
		return apierr.Invalid("policy.promotion.target_alias", "required (e.g. production)")
	case pr.PrimaryMetric == "":
		return apierr.Invalid("policy.promotion.primary_metric", "required (e.g. test_accuracy)")
	case pr.Direction == evaluatorv1.Direction_DIRECTION_UNSPECIFIED:
		return apierr.Invalid("policy.promotion.direction", "MAXIMIZE or MINIMIZE")
	case pr.MinImprovement < 0 || math.IsNaN(pr.MinImprovement):
		return apierr.Invalid("policy.promotion.min_improvement", "must not be negative")
	case pr.MinRelativeImprovement < 0 || math.IsNaN(pr.MinRelativeImprovement):
		return apierr.Invalid("policy.promotion.min_relative_improvement", "must not be negative")
	}
	for i, g := range pr.Guards {
		f := fmt.Sprintf("policy.promotion.guards[%d]", i)
		if g.Metric == "" {
			return apierr.Invalid(f+".metric", "required")
		}
		if g.Min == nil && g.Max == nil {
			return apierr.Invalid(f, "set min, max or both")
		}
		if g.Min != nil && g.Max != nil && *g.Min > *g.Max {
			return apierr.Invalid(f, "min %v above max %v", *g.Min, *g.Max)
		}
	}
	return nil
}

// GetEvaluationPolicy reads a model's policy.
func (e *Evaluator) GetEvaluationPolicy(ctx context.Context, model string) (*evaluatorv1.EvaluationPolicy, error) {
	if model == "" {
		return nil, apierr.Invalid("model", "required")
	}
	p := &evaluatorv1.EvaluationPolicy{}
	rev, err := e.st.Get(ctx, policyKey(model), p)
	if errors.Is(err, store.ErrNotFound) {
		return nil, apierr.NotFound("evaluation policy of model", model)
	}
	if err != nil {
		return nil, err
	}
	p.Etag = store.Etag(rev)
	return p, nil
}

package evaluator

import (
	"context"
	"fmt"
	"math"

	"google.golang.org/protobuf/types/known/timestamppb"

	evaluatorv1 "github.com/bmaas/bmaas/api/bmaas/evaluator/v1"
	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
	"github.com/bmaas/bmaas/pkg/apierr"
	"github.com/bmaas/bmaas/pkg/events"
	"github.com/bmaas/bmaas/pkg/store"
)

// Decide applies a promotion policy to a candidate version: the target
// alias moves (compare and swap on the version it held) only when the
// candidate beats the incumbent by the policy's margins and passes every
// guard. The decision is recorded either way, keyed by version and
// source, so the same source never decides twice (ErrAlreadyExists).
// notes come first among the decision's reasons.
func (e *Evaluator) Decide(ctx context.Context, model string, version int64, pol *evaluatorv1.PromotionPolicy, source, trigger string,
	notes ...string) (*evaluatorv1.Decision, error) {
	id := fmt.Sprintf("v%08d-%s", version, source)
	key := decisionKey(model, id)
	if _, err := e.st.Get(ctx, key, &evaluatorv1.Decision{}); err == nil {
		return nil, apierr.AlreadyExists("decision", model+"/"+id)
	}
	reg, err := e.registry()
	if err != nil {
		return nil, err
	}
	cand, err := reg.GetModelVersion(ctx, &registryv1.GetModelVersionRequest{Model: model, Version: itoa(version)})
	if err != nil {
		return nil, err
	}
	m, err := reg.GetModel(ctx, &registryv1.GetModelRequest{Name: model})
	if err != nil {
		return nil, err
	}
	d := &evaluatorv1.Decision{Id: id, Model: model, Version: version, TargetAlias: pol.TargetAlias,
		PrimaryMetric: pol.PrimaryMetric, Trigger: trigger, CreateTime: timestamppb.New(e.now()),
		IncumbentVersion: m.Model.Aliases[pol.TargetAlias], Reasons: notes}
	var inc map[string]float64
	if d.IncumbentVersion != 0 && d.IncumbentVersion != version {
		iv, err := reg.GetModelVersion(ctx, &registryv1.GetModelVersionRequest{Model: model, Version: itoa(d.IncumbentVersion)})
		if err != nil {
			return nil, err
		}
		inc = iv.Version.Metrics
	}
	ok := judge(d, pol, cand.Version.Metrics, inc)
	switch {
	case ok && !pol.Enabled:
		d.Reasons = append(d.Reasons, "policy disabled: the alias does not move")
	case ok:
		_, err := reg.SetAlias(ctx, &registryv1.SetAliasRequest{Model: model, Alias: pol.TargetAlias, Version: itoa(version),
			ExpectedVersion: d.IncumbentVersion})
		switch {
		case err == nil:
			d.Promoted = true
		case isAborted(err):
			d.Reasons = append(d.Reasons, fmt.Sprintf("alias %q moved while deciding; not promoted", pol.TargetAlias))
		default:
			return nil, fmt.Errorf("set alias %s@%s: %w", model, pol.TargetAlias, err)
		}
	}
	if _, err := e.st.Commit(ctx, []store.Cond{{Key: key}}, store.Put(key, d)); err != nil {
		if store.IsStale(err) {
			return nil, apierr.AlreadyExists("decision", model+"/"+id)
		}
		return nil, err
	}
	typ := "promotion.rejected"
	if d.Promoted {
		typ = "promoted"
	}
	e.publish(events.KindModel, model, typ, d)
	e.log.Info("promotion decision", "model", model, "version", version, "promoted", d.Promoted, "reasons", d.Reasons)
	return d, nil
}

// judge fills the decision's values and reasons and reports whether the
// candidate qualifies.
func judge(d *evaluatorv1.Decision, pol *evaluatorv1.PromotionPolicy, cand, inc map[string]float64) bool {
	ok := true
	reject := func(format string, args ...any) {
		ok = false
		d.Reasons = append(d.Reasons, fmt.Sprintf(format, args...))
	}
	cv, has := cand[pol.PrimaryMetric]
	if !has {
		reject("candidate has no metric %q", pol.PrimaryMetric)
	}
	d.CandidateValue = cv
	for _, g := range pol.Guards {
		x, has := cand[g.Metric]
		switch {
		case !has:
			reject("guard %s: candidate has no such metric", g.Metric)
		case g.Min != nil && x < *g.Min:
			reject("guard %s: %.6g below the minimum %.6g", g.Metric, x, *g.Min)
		case g.Max != nil && x > *g.Max:
			reject("guard %s: %.6g above the maximum %.6g", g.Metric, x, *g.Max)
		}
	}
	if d.IncumbentVersion == d.Version {
		reject("version %d already holds %q", d.Version, pol.TargetAlias)
		return false
	}
	if d.IncumbentVersion == 0 {
		if ok {
			d.Reasons = append(d.Reasons, fmt.Sprintf("no version holds %q; %s = %.6g", pol.TargetAlias, pol.PrimaryMetric, cv))
		}
		return ok
	}
	iv, has := inc[pol.PrimaryMetric]
	if !has {
		if ok {
			d.Reasons = append(d.Reasons, fmt.Sprintf("incumbent version %d has no metric %q", d.IncumbentVersion, pol.PrimaryMetric))
		}
		return ok
	}
	d.IncumbentValue = iv
	gain := cv - iv
	if pol.Direction == evaluatorv1.Direction_DIRECTION_MINIMIZE {
		gain = iv - cv
	}
	need := max(pol.MinImprovement, pol.MinRelativeImprovement*math.Abs(iv))
	desc := fmt.Sprintf("%s %.6g vs %.6g of version %d: improvement %.6g, needed %.6g", pol.PrimaryMetric, cv, iv, d.IncumbentVersion, gain, need)
	if gain <= 0 || gain < need {
		reject("not better enough: %s", desc)
	} else if ok {
		d.Reasons = append(d.Reasons, "better: "+desc)
	}
	return ok
}

// ListDecisions pages through a model's decisions, oldest version first.
func (e *Evaluator) ListDecisions(ctx context.Context, req *evaluatorv1.ListDecisionsRequest) (*evaluatorv1.ListDecisionsResponse, error) {
	if req.GetModel() == "" {
		return nil, apierr.Invalid("model", "required")
	}
	n, err := store.PageSize("page_size", req.GetPageSize())
	if err != nil {
		return nil, err
	}
	items, next, err := store.List(ctx, e.st, decisionsPrefix(req.Model), n, req.GetPageToken(),
		func() *evaluatorv1.Decision { return &evaluatorv1.Decision{} }, nil)
	if err != nil {
		return nil, err
	}
	out := &evaluatorv1.ListDecisionsResponse{NextPageToken: next}
	for _, it := range items {
		out.Decisions = append(out.Decisions, it.Msg)
	}
	return out, nil
}

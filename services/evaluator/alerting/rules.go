package alerting

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	evaluatorv1 "github.com/bmaas/bmaas/api/bmaas/evaluator/v1"
	"github.com/bmaas/bmaas/pkg/apierr"
	"github.com/bmaas/bmaas/pkg/authz"
	"github.com/bmaas/bmaas/pkg/iam"
	"github.com/bmaas/bmaas/pkg/store"
)

// RuleKey and AlertKey are where rules and alerts live in etcd (doc.go).
// A rule's name is qualified by its project (iam.QualifiedName).
func RuleKey(name string) string { return store.Key("alert-rules", iam.NameKey(name)) }
func AlertKey(id string) string  { return store.Key("alerts", id) }
func rulesPrefix() string        { return store.Key("alert-rules") + "/" }
func alertsPrefix() string       { return store.Key("alerts") + "/" }

var ruleName = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

// labelName is Prometheus's: Alertmanager refuses any other.
var labelName = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)

// validate checks a rule's fields, each error naming the field.
func validate(r *evaluatorv1.AlertRule) error {
	if r == nil {
		return apierr.Invalid("rule", "required")
	}
	if err := iam.CheckQualifiedMatch("rule.name", r.GetName(), ruleName); err != nil {
		return err
	}
	switch {
	case r.GetSeries() == "":
		return apierr.Invalid("rule.series", "required; one of %s", seriesNames())
	}
	s, ok := seriesTable[r.GetSeries()]
	switch {
	case !ok:
		return apierr.Invalid("rule.series", "unknown series %q; one of %s", r.GetSeries(), seriesNames())
	case s.platform && r.GetDeployment() != "":
		return apierr.Invalid("rule.deployment", "series %s is the platform's, of no deployment", r.GetSeries())
	case !s.platform && r.GetDeployment() == "":
		return apierr.Invalid("rule.deployment", "required: series %s is a deployment's", r.GetSeries())
	case s.platform && r.GetAction() != nil:
		return apierr.Invalid("rule.action", "series %s is the platform's: there is no deployed model to retrain", r.GetSeries())
	case r.GetColumn() != "" && !s.perColumn:
		return apierr.Invalid("rule.column", "series %s has no columns", r.GetSeries())
	case r.GetComparison() == evaluatorv1.Comparison_COMPARISON_UNSPECIFIED:
		return apierr.Invalid("rule.comparison", "required (>, >=, <, <=)")
	case r.GetFor().AsDuration() < 0:
		return apierr.Invalid("rule.for", "must not be negative, got %s", r.GetFor().AsDuration())
	}
	for k := range r.GetLabels() {
		if !labelName.MatchString(k) {
			return apierr.Invalid("rule.labels", "label name %q must match [a-zA-Z_][a-zA-Z0-9_]*", k)
		}
	}
	for k := range r.GetAnnotations() {
		if !labelName.MatchString(k) {
			return apierr.Invalid("rule.annotations", "annotation name %q must match [a-zA-Z_][a-zA-Z0-9_]*", k)
		}
	}
	if a := r.GetAction(); a != nil {
		switch {
		case a.GetKind() != "retrain":
			return apierr.Invalid("rule.action.kind", "unknown action %q; the one action is retrain", a.GetKind())
		case a.GetCoolDown().AsDuration() < 0:
			return apierr.Invalid("rule.action.cool_down", "must not be negative, got %s", a.GetCoolDown().AsDuration())
		case a.GetPayloadWindow().AsDuration() < 0:
			return apierr.Invalid("rule.action.payload_window", "must not be negative, got %s", a.GetPayloadWindow().AsDuration())
		}
	}
	return nil
}

// Create stores a new rule after validating it and asking check (the
// deployment exists; the action can run).
func (e *Engine) Create(ctx context.Context, r *evaluatorv1.AlertRule) (*evaluatorv1.AlertRule, error) {
	if err := validate(r); err != nil {
		return nil, err
	}
	if err := iam.ProjectExists(ctx, e.st, "rule.name", iam.ProjectOfName(r.GetName())); err != nil {
		return nil, err
	}
	if e.check != nil && r.GetDeployment() != "" {
		if err := e.check(ctx, r); err != nil {
			return nil, err
		}
	}
	out := &evaluatorv1.AlertRule{Name: r.GetName(), Deployment: r.GetDeployment(), Series: r.GetSeries(), Column: r.GetColumn(),
		Comparison: r.GetComparison(), Threshold: r.GetThreshold(), For: r.GetFor(), Labels: r.GetLabels(),
		Annotations: r.GetAnnotations(), Action: r.GetAction(), State: evaluatorv1.AlertState_ALERT_STATE_INACTIVE,
		StateTime: timestamppb.New(e.now()), CreateTime: timestamppb.New(e.now())}
	if _, err := e.st.Commit(ctx, []store.Cond{{Key: RuleKey(out.Name)}}, store.Put(RuleKey(out.Name), out)); err != nil {
		if store.IsStale(err) {
			return nil, apierr.AlreadyExists("alert rule", out.Name)
		}
		return nil, err
	}
	return out, nil
}

// Get reads a rule.
func (e *Engine) Get(ctx context.Context, name string) (*evaluatorv1.AlertRule, error) {
	if name == "" {
		return nil, apierr.Invalid("name", "required")
	}
	r := &evaluatorv1.AlertRule{}
	if _, err := e.st.Get(ctx, RuleKey(name), r); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, apierr.NotFound("alert rule", name)
		}
		return nil, err
	}
	return r, nil
}

// List pages through the rules of the call's project by name.
func (e *Engine) List(ctx context.Context, req *evaluatorv1.ListAlertRulesRequest) (*evaluatorv1.ListAlertRulesResponse, error) {
	n, err := store.PageSize("page_size", req.GetPageSize())
	if err != nil {
		return nil, err
	}
	project := iam.ProjectFrom(ctx)
	items, next, err := store.List(ctx, e.st, iam.ProjectPrefix(rulesPrefix(), project), n, req.GetPageToken(),
		func() *evaluatorv1.AlertRule { return &evaluatorv1.AlertRule{} },
		func(r *evaluatorv1.AlertRule) bool { return iam.InProject(r.GetName(), project) })
	if err != nil {
		return nil, err
	}
	out := &evaluatorv1.ListAlertRulesResponse{NextPageToken: next}
	for _, it := range items {
		out.Rules = append(out.Rules, it.Msg)
	}
	return out, nil
}

// Delete removes a rule; its alerts stay as history.
func (e *Engine) Delete(ctx context.Context, name string) error {
	if _, err := e.Get(ctx, name); err != nil {
		return err
	}
	_, err := e.st.Commit(ctx, nil, store.Delete(RuleKey(name)))
	return err
}

// Alerts lists the alerts of the call's project's rules, newest first,
// optionally of one rule.
func (e *Engine) Alerts(ctx context.Context, req *evaluatorv1.ListAlertsRequest) (*evaluatorv1.ListAlertsResponse, error) {
	n, err := store.PageSize("page_size", req.GetPageSize())
	if err != nil {
		return nil, err
	}
	project := iam.ProjectFrom(ctx)
	items, _, err := store.List(ctx, e.st, alertsPrefix(), store.MaxPageSize*maxAlertsFactor, "",
		func() *evaluatorv1.Alert { return &evaluatorv1.Alert{} },
		func(a *evaluatorv1.Alert) bool {
			return iam.InProject(a.GetRule(), project) && (req.GetRule() == "" || a.GetRule() == req.GetRule())
		})
	if err != nil {
		return nil, err
	}
	// Ids sort by creation time: newest first is the listing reversed.
	sort.Slice(items, func(i, j int) bool { return items[i].Msg.GetId() > items[j].Msg.GetId() })
	start := 0
	if t := req.GetPageToken(); t != "" {
		start = sort.Search(len(items), func(i int) bool { return items[i].Msg.GetId() < t })
	}
	out := &evaluatorv1.ListAlertsResponse{}
	for i := start; i < len(items) && len(out.Alerts) < n; i++ {
		out.Alerts = append(out.Alerts, items[i].Msg)
	}
	if start+n < len(items) {
		out.NextPageToken = out.Alerts[len(out.Alerts)-1].GetId()
	}
	return out, nil
}

// maxAlertsFactor bounds the alerts kept: ten pages' worth.
const maxAlertsFactor = 10

// Alert reads one alert.
func (e *Engine) Alert(ctx context.Context, id string) (*evaluatorv1.Alert, error) {
	if id == "" {
		return nil, apierr.Invalid("id", "required")
	}
	a := &evaluatorv1.Alert{}
	if _, err := e.st.Get(ctx, AlertKey(id), a); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, apierr.NotFound("alert", id)
		}
		return nil, err
	}
	if err := iam.CheckIn(ctx, "alert-rules", "alert", id, iam.ProjectOfName(a.GetRule()), authz.Read); err != nil {
		return nil, err
	}
	return a, nil
}

// coolDown is a rule's action cool-down (default 1h).
func coolDown(r *evaluatorv1.AlertRule) time.Duration {
	if d := r.GetAction().GetCoolDown(); d != nil {
		return d.AsDuration()
	}
	return time.Hour
}

func describe(r *evaluatorv1.AlertRule) string {
	if r.GetDeployment() == "" {
		return Condition(r) + " on the platform"
	}
	return fmt.Sprintf("%s on deployment %s", Condition(r), r.GetDeployment())
}

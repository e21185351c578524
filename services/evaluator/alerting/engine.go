package alerting

import (
	"context"
	"log/slog"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	evaluatorv1 "github.com/bmaas/bmaas/api/bmaas/evaluator/v1"
	"github.com/bmaas/bmaas/pkg/events"
	"github.com/bmaas/bmaas/pkg/iam"
	"github.com/bmaas/bmaas/pkg/store"
)

// Config configures rule evaluation and notification.
type Config struct {
	// Interval is how often the leader evaluates every rule.
	Interval time.Duration
	// Resend is how often a firing alert is sent again to Alertmanager
	// (which forgets an alert not sent again before its endsAt).
	Resend time.Duration
	// Alertmanagers are base URLs of Alertmanagers (API v2).
	Alertmanagers []string
	// Webhooks get each firing and resolved alert as JSON.
	Webhooks []string
	// MinRows is the rows a window needs before its drift is read.
	MinRows int64
	// ExternalURL is where the alerts' generator links point.
	ExternalURL string
}

// Source gives a deployment's latest monitoring window.
type Source interface {
	Latest(deployment string, minRows int64) *evaluatorv1.MonitorWindow
}

// Deps are the engine's dependencies. Check validates a new rule against
// the platform (its deployment exists, its action can run); Act runs a
// firing rule's action and Follow extends an alert's chain of links
// (the job's version, its evaluation, the decision, the rollout),
// reporting whether the chain is complete.
type Deps struct {
	Store  *store.Store
	Bus    *events.Bus
	Source Source
	Check  func(ctx context.Context, r *evaluatorv1.AlertRule) error
	Act    func(ctx context.Context, r *evaluatorv1.AlertRule, a *evaluatorv1.Alert) ([]*evaluatorv1.AlertLink, error)
	Follow func(ctx context.Context, a *evaluatorv1.Alert) ([]*evaluatorv1.AlertLink, bool)
	// Platform reads a platform series (PlatformSeries) now, as a rule of
	// project sees it.
	Platform func(ctx context.Context, series, project string) (float64, error)
	Logger   *slog.Logger
	Now      func() time.Time
}

// Engine keeps alert rules and, on the leader, evaluates them.
type Engine struct {
	cfg    Config
	st     *store.Store
	bus    *events.Bus
	src    Source
	check  func(ctx context.Context, r *evaluatorv1.AlertRule) error
	act    func(ctx context.Context, r *evaluatorv1.AlertRule, a *evaluatorv1.Alert) ([]*evaluatorv1.AlertLink, error)
	follow func(ctx context.Context, a *evaluatorv1.Alert) ([]*evaluatorv1.AlertLink, bool)
	plat   func(ctx context.Context, series, project string) (float64, error)
	log    *slog.Logger
	now    func() time.Time
	notify *notifier
	sent   map[string]time.Time // alert id -> last sent to Alertmanager
}

// New builds an engine.
func New(cfg Config, deps Deps) *Engine {
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	return &Engine{cfg: cfg, st: deps.Store, bus: deps.Bus, src: deps.Source, check: deps.Check, act: deps.Act,
		follow: deps.Follow, plat: deps.Platform, log: deps.Logger, now: deps.Now, notify: newNotifier(cfg, deps.Bus, deps.Logger),
		sent: map[string]time.Time{}}
}

// Evaluate runs one pass over every rule; writes are fenced by the
// leader's term.
func (e *Engine) Evaluate(ctx context.Context, fence clientv3.Cmp) {
	items, _, err := store.List(ctx, e.st, rulesPrefix(), store.MaxPageSize, "",
		func() *evaluatorv1.AlertRule { return &evaluatorv1.AlertRule{} }, nil)
	if err != nil {
		if ctx.Err() == nil {
			e.log.Warn("list alert rules", "err", err)
		}
		return
	}
	for _, it := range items {
		if err := e.step(ctx, fence, it.Msg, it.Rev); err != nil && ctx.Err() == nil {
			e.log.Warn("alert rule", "rule", it.Msg.GetName(), "err", err)
		}
	}
}

// step moves one rule through inactive, pending and firing.
func (e *Engine) step(ctx context.Context, fence clientv3.Cmp, r *evaluatorv1.AlertRule, rev int64) error {
	now := e.now()
	s := seriesTable[r.GetSeries()]
	minRows := int64(1)
	if s.drift {
		minRows = e.cfg.MinRows
	}
	var v float64
	var ok bool
	switch {
	case s.platform && e.plat != nil:
		var err error
		if v, err = e.plat(ctx, r.GetSeries(), iam.ProjectOfName(r.GetName())); err != nil {
			return err // the rule stays as it is until the series reads
		}
		ok = true
	case s.platform:
	default:
		if w := e.src.Latest(r.GetDeployment(), minRows); w != nil && (!s.drift || w.GetRows() >= minRows) {
			v, ok = s.value(w, r.GetColumn())
		}
	}
	cond := ok && holds(r.GetComparison(), v, r.GetThreshold())
	next := proto.Clone(r).(*evaluatorv1.AlertRule)
	if ok {
		next.Value = v
	}
	var alert *evaluatorv1.Alert
	if r.GetAlert() != "" {
		alert = &evaluatorv1.Alert{}
		if _, err := e.st.Get(ctx, AlertKey(r.GetAlert()), alert); err != nil {
			alert = nil
		}
	}
	var notifyState evaluatorv1.AlertState
	switch r.GetState() {
	case evaluatorv1.AlertState_ALERT_STATE_PENDING:
		switch {
		case !cond:
			next.State, next.StateTime, next.Alert = evaluatorv1.AlertState_ALERT_STATE_INACTIVE, timestamppb.New(now), ""
			if alert != nil {
				return e.commit(ctx, fence, r, rev, next, nil, alert.GetId())
			}
		case now.Sub(r.GetStateTime().AsTime()) >= r.GetFor().AsDuration():
			next.State, next.StateTime = evaluatorv1.AlertState_ALERT_STATE_FIRING, timestamppb.New(now)
			if alert == nil {
				alert = e.newAlert(r, v, now)
			}
			alert.State, alert.FiringTime, alert.Value = evaluatorv1.AlertState_ALERT_STATE_FIRING, timestamppb.New(now), v
			notifyState = evaluatorv1.AlertState_ALERT_STATE_FIRING
			e.runAction(ctx, next, alert, now)
		}
	case evaluatorv1.AlertState_ALERT_STATE_FIRING:
		if !cond {
			next.State, next.StateTime = evaluatorv1.AlertState_ALERT_STATE_INACTIVE, timestamppb.New(now)
			if alert != nil {
				alert.State, alert.ResolvedTime = evaluatorv1.AlertState_ALERT_STATE_RESOLVED, timestamppb.New(now)
				notifyState = evaluatorv1.AlertState_ALERT_STATE_RESOLVED
			}
		} else if alert != nil {
			alert.Value = v
			if now.Sub(e.sent[alert.GetId()]) >= e.cfg.Resend {
				notifyState = evaluatorv1.AlertState_ALERT_STATE_FIRING
			}
		}
	default: // inactive
		if cond {
			next.State, next.StateTime = evaluatorv1.AlertState_ALERT_STATE_PENDING, timestamppb.New(now)
			alert = e.newAlert(r, v, now)
			next.Alert = alert.GetId()
			if r.GetFor().AsDuration() <= 0 {
				next.State = evaluatorv1.AlertState_ALERT_STATE_FIRING
				alert.State, alert.FiringTime = evaluatorv1.AlertState_ALERT_STATE_FIRING, timestamppb.New(now)
				notifyState = evaluatorv1.AlertState_ALERT_STATE_FIRING
				e.runAction(ctx, next, alert, now)
			}
		}
	}
	if alert != nil && e.follow != nil && hasLink(alert, "job") && !hasLink(alert, "done") {
		links, done := e.follow(ctx, alert)
		alert.Links = mergeLinks(alert.Links, links)
		if done {
			alert.Links = append(alert.Links, &evaluatorv1.AlertLink{Kind: "done", Time: timestamppb.New(now), Message: "the chain of actions is complete"})
		}
	}
	if notifyState != evaluatorv1.AlertState_ALERT_STATE_UNSPECIFIED && alert != nil {
		e.sent[alert.GetId()] = now
		for _, l := range e.notify.send(ctx, r, alert, notifyState, now) {
			alert.Links = append(alert.Links, l)
		}
		if notifyState == evaluatorv1.AlertState_ALERT_STATE_RESOLVED {
			delete(e.sent, alert.GetId())
		}
	}
	if proto.Equal(next, r) && alert == nil {
		return nil
	}
	return e.commit(ctx, fence, r, rev, next, alert, "")
}

// newAlert starts an episode of r.
func (e *Engine) newAlert(r *evaluatorv1.AlertRule, v float64, now time.Time) *evaluatorv1.Alert {
	labels := map[string]string{"alertname": r.GetName(), "series": r.GetSeries()}
	if r.GetDeployment() != "" {
		labels["deployment"] = r.GetDeployment()
	}
	if r.GetColumn() != "" {
		labels["column"] = r.GetColumn()
	}
	for k, val := range r.GetLabels() {
		labels[k] = val
	}
	ann := map[string]string{"condition": Condition(r), "summary": describe(r)}
	for k, val := range r.GetAnnotations() {
		ann[k] = val
	}
	return &evaluatorv1.Alert{Id: events.NewID(), Rule: r.GetName(), Deployment: r.GetDeployment(),
		State: evaluatorv1.AlertState_ALERT_STATE_PENDING, Value: v, Labels: labels, Annotations: ann,
		PendingTime: timestamppb.New(now)}
}

// runAction runs a firing rule's action unless it ran within its
// cool-down; what it did, or why not, becomes links of the alert.
func (e *Engine) runAction(ctx context.Context, r *evaluatorv1.AlertRule, a *evaluatorv1.Alert, now time.Time) {
	if r.GetAction() == nil || e.act == nil {
		return
	}
	if last := r.GetLastActionTime(); last != nil && now.Sub(last.AsTime()) < coolDown(r) {
		a.Links = append(a.Links, &evaluatorv1.AlertLink{Kind: "skipped", Time: timestamppb.New(now),
			Message: "the " + r.GetAction().GetKind() + " action ran at " + last.AsTime().Format(time.RFC3339) + ", within its cool-down of " + coolDown(r).String()})
		return
	}
	r.LastActionTime = timestamppb.New(now)
	links, err := e.act(ctx, r, a)
	a.Links = append(a.Links, links...)
	if err != nil {
		a.Links = append(a.Links, &evaluatorv1.AlertLink{Kind: "error", Time: timestamppb.New(now), Message: r.GetAction().GetKind() + ": " + err.Error()})
	}
}

// commit writes the rule and its alert (or deletes an alert that never
// fired), if the rule is unchanged since read and this replica leads.
func (e *Engine) commit(ctx context.Context, fence clientv3.Cmp, r *evaluatorv1.AlertRule, rev int64, next *evaluatorv1.AlertRule, a *evaluatorv1.Alert, drop string) error {
	ops := []clientv3.Op{}
	put := func(key string, m proto.Message) error {
		b, err := proto.Marshal(m)
		if err == nil {
			ops = append(ops, clientv3.OpPut(key, string(b)))
		}
		return err
	}
	if err := put(RuleKey(r.GetName()), next); err != nil {
		return err
	}
	if a != nil {
		if err := put(AlertKey(a.GetId()), a); err != nil {
			return err
		}
	}
	if drop != "" {
		ops = append(ops, clientv3.OpDelete(AlertKey(drop)))
	}
	_, err := e.st.Client().Txn(ctx).If(fence, clientv3.Compare(clientv3.ModRevision(RuleKey(r.GetName())), "=", rev)).Then(ops...).Commit()
	return err
}

func hasLink(a *evaluatorv1.Alert, kind string) bool {
	for _, l := range a.GetLinks() {
		if l.GetKind() == kind {
			return true
		}
	}
	return false
}

// mergeLinks appends the links not there yet (by kind and ref).
func mergeLinks(have, add []*evaluatorv1.AlertLink) []*evaluatorv1.AlertLink {
	for _, l := range add {
		dup := false
		for _, h := range have {
			if h.GetKind() == l.GetKind() && h.GetRef() == l.GetRef() {
				dup = true
				break
			}
		}
		if !dup {
			have = append(have, l)
		}
	}
	return have
}

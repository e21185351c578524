package cli

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	evaluatorv1 "github.com/bmaas/bmaas/api/bmaas/evaluator/v1"
)

func alertCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "alert",
		Aliases: []string{"alerts"},
		Short:   "Alert rules over deployments' monitoring, and the alerts they raised",
		Long: "An alert rule watches a deployment's monitoring series (drift, data quality, live accuracy,\n" +
			"traffic, errors, latency) and fires when its condition holds for its --for: the alert goes to\n" +
			"the Alertmanagers, webhooks and NATS subject the evaluator is configured with, and a rule's\n" +
			"action (--retrain) trains the model again. `bmaas alert list` shows the alerts, newest first;\n" +
			"`bmaas alert get ID` an alert's chain of actions.",
	}
	rule := &cobra.Command{Use: "rule", Aliases: []string{"rules"}, Short: "Alert rules (create, list, get, delete)"}
	rule.AddCommand(alertRuleCreateCommand(g), alertRuleListCommand(g), alertRuleGetCommand(g), alertRuleUpdateCommand(g),
		alertRuleDeleteCommand(g))
	cmd.AddCommand(rule, alertListCommand(g), alertGetCommand(g))
	return cmd
}

func (c *client) monitor() evaluatorv1.MonitorServiceClient {
	return evaluatorv1.NewMonitorServiceClient(c.conn)
}

// comparisons are the --when operators.
var comparisons = map[string]evaluatorv1.Comparison{">": evaluatorv1.Comparison_COMPARISON_GREATER,
	">=": evaluatorv1.Comparison_COMPARISON_GREATER_OR_EQUAL, "<": evaluatorv1.Comparison_COMPARISON_LESS,
	"<=": evaluatorv1.Comparison_COMPARISON_LESS_OR_EQUAL}

// parseWhen reads "SERIES[{column}] OP THRESHOLD", e.g.
// "drift_score{petal_length_cm} > 0.3".
func parseWhen(s string) (*evaluatorv1.AlertRule, error) {
	f := strings.Fields(s)
	if len(f) != 3 {
		return nil, usageErrorf("--when %q: expected SERIES OP THRESHOLD, e.g. 'drift_share > 0.3'", s)
	}
	r := &evaluatorv1.AlertRule{}
	series, col, hasCol := strings.Cut(f[0], "{")
	r.Series = series
	if hasCol {
		c, ok := strings.CutSuffix(col, "}")
		if !ok || c == "" {
			return nil, usageErrorf("--when %q: a column goes in braces, e.g. drift_score{petal_length_cm}", s)
		}
		r.Column = strings.Trim(strings.TrimPrefix(c, "column="), `"`)
	}
	op, ok := comparisons[f[1]]
	if !ok {
		return nil, usageErrorf("--when %q: the operator is one of >, >=, <, <=", s)
	}
	r.Comparison = op
	if _, err := fmt.Sscanf(f[2], "%g", &r.Threshold); err != nil {
		return nil, usageErrorf("--when %q: %q is not a number", s, f[2])
	}
	return r, nil
}

// alertRuleFields name the flags for the fields a server's error starts with.
var alertRuleFields = fieldNames{"rule.name": "NAME", "rule.deployment": "--deployment", "rule.series": "--when",
	"rule.column": "--when", "rule.comparison": "--when", "rule.for": "--for", "rule.labels": "--label",
	"rule.annotations": "--annotation", "rule.action": "--retrain", "rule.action.kind": "--retrain",
	"rule.action.dataset": "--retrain-dataset", "rule.action.cool_down": "--cool-down",
	"rule.action.payload_window": "--retrain-from-payloads"}

func alertRuleCreateCommand(g *globals) *cobra.Command {
	var deployment, when, dataset string
	var labels, annotations []string
	var forD, cool, fromPayloads time.Duration
	var retrain bool
	cmd := &cobra.Command{
		Use:   "create NAME [--deployment NAME] --when 'SERIES OP THRESHOLD' [--for 5m] [--retrain [--retrain-dataset DS]]",
		Short: "Create an alert rule over a deployment's monitoring series or the platform's",
		Long: "A deployment's SERIES is one of drift_score (with a column in braces, or the largest),\n" +
			"drift_share, drifted_columns, prediction_drift, missing_rate, out_of_range_rate,\n" +
			"unseen_category_rate, schema_violations, accuracy, f1, auc, rmse, mae (from feedback),\n" +
			"requests, error_rate, latency_p95_seconds; the platform's (no --deployment) are job_failures\n" +
			"(the rule's project's, over the last monitoring window), queued_jobs (the project's) and\n" +
			"gpu_idle (the cluster's GPUs held while under 5% busy).\n" +
			"OP is >, >=, < or <=. --retrain runs the training job of the deployed\n" +
			"version again (on --retrain-dataset) when the rule fires, at most once per --cool-down; the\n" +
			"model's promotion policy decides whether the new version is deployed.",
		Example: "  bmaas alert rule create iris-drift --deployment iris --when 'drifted_columns >= 1' --for 5m \\\n" +
			"    --label team=ml --retrain --retrain-dataset iris-2026-12\n" +
			"  bmaas alert rule create iris-accuracy --deployment iris --when 'accuracy < 0.9' --for 30m\n" +
			"  bmaas alert rule create jobs-failing --when 'job_failures >= 3' --label severity=page",
		Args: args("NAME", 1),
		RunE: func(cmd *cobra.Command, a []string) error {
			if when == "" {
				return usageErrorf("--when is required, e.g. --when 'drift_share > 0.3'")
			}
			r, err := parseWhen(when)
			if err != nil {
				return err
			}
			if forD < 0 {
				return usageErrorf("--for must not be negative, got %s", forD)
			}
			r.Name, r.Deployment, r.For = a[0], deployment, durationpb.New(forD)
			if r.Labels, err = parseKV("label", labels); err != nil {
				return err
			}
			if r.Annotations, err = parseKV("annotation", annotations); err != nil {
				return err
			}
			if !retrain && (dataset != "" || cmd.Flags().Changed("cool-down") || fromPayloads != 0) {
				return usageErrorf("--retrain-dataset, --retrain-from-payloads and --cool-down go with --retrain")
			}
			if retrain {
				r.Action = &evaluatorv1.AlertAction{Kind: "retrain", Dataset: dataset, CoolDown: durationpb.New(cool)}
				if fromPayloads != 0 {
					r.Action.PayloadWindow = durationpb.New(fromPayloads)
				}
			}
			return g.withClient(cmd, func(ctx context.Context, c *client) error {
				ctx, cancel := c.call(ctx)
				defer cancel()
				resp, err := c.monitor().CreateAlertRule(ctx, &evaluatorv1.CreateAlertRuleRequest{Rule: r})
				if err != nil {
					return alertRuleFields.rename(err, a)
				}
				return printAlertRule(g, cmd, resp.GetRule())
			})
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&deployment, "deployment", "", "the deployment watched (none for the platform's series)")
	fl.StringVar(&when, "when", "", "the condition: SERIES OP THRESHOLD (e.g. 'drift_score{petal_length_cm} > 0.3')")
	fl.DurationVar(&forD, "for", 0, "how long the condition holds before the rule fires")
	fl.StringArrayVar(&labels, "label", nil, "a label of the alert, KEY=VALUE (repeatable)")
	fl.StringArrayVar(&annotations, "annotation", nil, "an annotation of the alert, KEY=VALUE (repeatable)")
	fl.BoolVar(&retrain, "retrain", false, "when firing, run the deployed version's training job again")
	fl.StringVar(&dataset, "retrain-dataset", "", "the dataset to retrain on, NAME or NAME@VERSION (default: the job's own)")
	fl.DurationVar(&cool, "cool-down", time.Hour, "no second retraining within this long")
	fl.DurationVar(&fromPayloads, "retrain-from-payloads", 0, "retrain on a dataset made of this long of logged requests with feedback (a new version of --retrain-dataset, default DEPLOYMENT-feedback)")
	return cmd
}

func alertRuleListCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the alert rules and where each stands",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.withClient(cmd, func(ctx context.Context, c *client) error {
				ctx, cancel := c.call(ctx)
				defer cancel()
				resp, err := c.monitor().ListAlertRules(ctx, &evaluatorv1.ListAlertRulesRequest{})
				if err != nil {
					return err
				}
				return g.printer(cmd.OutOrStdout()).print(resp, func(t *table) {
					t.row("NAME", "DEPLOYMENT", "CONDITION", "FOR", "STATE", "SINCE", "VALUE", "ACTION")
					for _, r := range resp.GetRules() {
						t.row(r.GetName(), r.GetDeployment(), condition(r), r.GetFor().AsDuration().String(), alertState(r.GetState()),
							formatTime(r.GetStateTime()), formatFloat(r.GetValue()), orDash(r.GetAction().GetKind()))
					}
				})
			})
		},
	}
}

func alertRuleGetCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "get NAME",
		Short: "Show an alert rule",
		Args:  args("NAME", 1),
		RunE: func(cmd *cobra.Command, a []string) error {
			return g.withClient(cmd, func(ctx context.Context, c *client) error {
				ctx, cancel := c.call(ctx)
				defer cancel()
				resp, err := c.monitor().GetAlertRule(ctx, &evaluatorv1.GetAlertRuleRequest{Name: a[0]})
				if err != nil {
					return err
				}
				return printAlertRule(g, cmd, resp.GetRule())
			})
		},
	}
}

func alertRuleUpdateCommand(g *globals) *cobra.Command {
	var when, dataset string
	var labels, annotations []string
	var forD, cool time.Duration
	var noAction bool
	cmd := &cobra.Command{
		Use:   "update NAME [--when 'SERIES OP THRESHOLD'] [--for 5m] [--label K=V]... [--annotation K=V]... [--retrain-dataset DS] [--cool-down 1h] [--no-action]",
		Short: "Change an alert rule's condition, labels, annotations or action (only what the flags name)",
		Long: "Change what the flags name and keep the rest: --when replaces the condition, --label and\n" +
			"--annotation the whole set of labels or annotations, --retrain-dataset and --cool-down the\n" +
			"retrain action's (the rule must have one), --no-action removes the action. Where the rule\n" +
			"stands is kept; its next evaluation reads the new condition.",
		Example: "  bmaas alert rule update iris-drift --when 'drifted_columns >= 2' --for 10m",
		Args:    args("NAME", 1),
		RunE: func(cmd *cobra.Command, a []string) error {
			fl := cmd.Flags()
			r := &evaluatorv1.AlertRule{Name: a[0]}
			var paths []string
			if fl.Changed("when") {
				w, err := parseWhen(when)
				if err != nil {
					return err
				}
				r.Series, r.Column, r.Comparison, r.Threshold = w.Series, w.Column, w.Comparison, w.Threshold
				paths = append(paths, "series", "column", "comparison", "threshold")
			}
			if fl.Changed("for") {
				if forD < 0 {
					return usageErrorf("--for must not be negative, got %s", forD)
				}
				r.For, paths = durationpb.New(forD), append(paths, "for")
			}
			var err error
			if fl.Changed("label") {
				if r.Labels, err = parseKV("label", labels); err != nil {
					return err
				}
				paths = append(paths, "labels")
			}
			if fl.Changed("annotation") {
				if r.Annotations, err = parseKV("annotation", annotations); err != nil {
					return err
				}
				paths = append(paths, "annotations")
			}
			changesAction := fl.Changed("retrain-dataset") || fl.Changed("cool-down")
			switch {
			case noAction && changesAction:
				return usageErrorf("--no-action removes the action: give no --retrain-dataset or --cool-down")
			case noAction:
				paths = append(paths, "action")
			}
			if len(paths) == 0 && !changesAction {
				return usageErrorf("nothing to change: give --when, --for, --label, --annotation, --retrain-dataset, --cool-down or --no-action")
			}
			return g.withClient(cmd, func(ctx context.Context, c *client) error {
				ctx, cancel := c.call(ctx)
				defer cancel()
				if changesAction {
					cur, err := c.monitor().GetAlertRule(ctx, &evaluatorv1.GetAlertRuleRequest{Name: a[0]})
					if err != nil {
						return err
					}
					if cur.GetRule().GetAction() == nil {
						return usageErrorf("rule %s has no action: --retrain-dataset and --cool-down change a retrain action (create the rule with --retrain)", a[0])
					}
					r.Action = cur.GetRule().GetAction()
					if fl.Changed("retrain-dataset") {
						r.Action.Dataset = dataset
					}
					if fl.Changed("cool-down") {
						r.Action.CoolDown = durationpb.New(cool)
					}
					paths = append(paths, "action")
				}
				resp, err := c.monitor().UpdateAlertRule(ctx, &evaluatorv1.UpdateAlertRuleRequest{Rule: r, UpdateMask: &fieldmaskpb.FieldMask{Paths: paths}})
				if err != nil {
					return alertRuleFields.rename(err, a)
				}
				return printAlertRule(g, cmd, resp.GetRule())
			})
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&when, "when", "", "the new condition: SERIES OP THRESHOLD")
	fl.DurationVar(&forD, "for", 0, "how long the condition holds before the rule fires")
	fl.StringArrayVar(&labels, "label", nil, "the alert's labels, KEY=VALUE (repeatable; replaces them all)")
	fl.StringArrayVar(&annotations, "annotation", nil, "the alert's annotations, KEY=VALUE (repeatable; replaces them all)")
	fl.StringVar(&dataset, "retrain-dataset", "", "the dataset the retrain action trains on")
	fl.DurationVar(&cool, "cool-down", time.Hour, "no second retraining within this long")
	fl.BoolVar(&noAction, "no-action", false, "remove the rule's action")
	return cmd
}

func alertRuleDeleteCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete an alert rule (its alerts stay as history)",
		Args:  args("NAME", 1),
		RunE: func(cmd *cobra.Command, a []string) error {
			return g.withClient(cmd, func(ctx context.Context, c *client) error {
				ctx, cancel := c.call(ctx)
				defer cancel()
				if _, err := c.monitor().DeleteAlertRule(ctx, &evaluatorv1.DeleteAlertRuleRequest{Name: a[0]}); err != nil {
					return err
				}
				return done(g, cmd, "alert rule %s deleted", a[0])
			})
		},
	}
}

func alertListCommand(g *globals) *cobra.Command {
	var rule string
	cmd := &cobra.Command{
		Use:   "list [--rule NAME]",
		Short: "List the alerts, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.withClient(cmd, func(ctx context.Context, c *client) error {
				ctx, cancel := c.call(ctx)
				defer cancel()
				resp, err := c.monitor().ListAlerts(ctx, &evaluatorv1.ListAlertsRequest{Rule: rule})
				if err != nil {
					return err
				}
				return g.printer(cmd.OutOrStdout()).print(resp, func(t *table) {
					t.row("ID", "RULE", "DEPLOYMENT", "STATE", "VALUE", "FIRING", "RESOLVED", "LAST STEP")
					for _, a := range resp.GetAlerts() {
						last := "-"
						if n := len(a.GetLinks()); n > 0 {
							last = a.GetLinks()[n-1].GetKind()
						}
						t.row(a.GetId(), a.GetRule(), a.GetDeployment(), alertState(a.GetState()), formatFloat(a.GetValue()),
							formatTime(a.GetFiringTime()), formatTime(a.GetResolvedTime()), last)
					}
				})
			})
		},
	}
	cmd.Flags().StringVar(&rule, "rule", "", "only this rule's alerts")
	return cmd
}

func alertGetCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "get ID",
		Short: "Show an alert and its chain of actions (notifications, job, version, evaluation, decision, rollout)",
		Args:  args("ID", 1),
		RunE: func(cmd *cobra.Command, a []string) error {
			return g.withClient(cmd, func(ctx context.Context, c *client) error {
				ctx, cancel := c.call(ctx)
				defer cancel()
				resp, err := c.monitor().GetAlert(ctx, &evaluatorv1.GetAlertRequest{Id: a[0]})
				if err != nil {
					return err
				}
				al := resp.GetAlert()
				return g.printer(cmd.OutOrStdout()).print(al, func(t *table) {
					t.row("ID", al.GetId())
					t.row("RULE", al.GetRule())
					t.row("DEPLOYMENT", al.GetDeployment())
					t.row("STATE", alertState(al.GetState()))
					t.row("VALUE", formatFloat(al.GetValue()))
					t.row("LABELS", mapString(al.GetLabels()))
					t.row("PENDING", formatTime(al.GetPendingTime()))
					t.row("FIRING", formatTime(al.GetFiringTime()))
					t.row("RESOLVED", formatTime(al.GetResolvedTime()))
					for _, l := range al.GetLinks() {
						t.row("  "+formatTime(l.GetTime()), l.GetKind()+" "+l.GetRef(), l.GetMessage())
					}
				})
			})
		},
	}
}

func printAlertRule(g *globals, cmd *cobra.Command, r *evaluatorv1.AlertRule) error {
	return g.printer(cmd.OutOrStdout()).print(r, func(t *table) {
		t.row("NAME", r.GetName())
		t.row("DEPLOYMENT", r.GetDeployment())
		t.row("CONDITION", condition(r))
		t.row("FOR", r.GetFor().AsDuration().String())
		t.row("LABELS", orDash(mapString(r.GetLabels())))
		t.row("ANNOTATIONS", orDash(mapString(r.GetAnnotations())))
		if ac := r.GetAction(); ac != nil {
			t.row("ACTION", fmt.Sprintf("%s on %s (cool-down %s)", ac.GetKind(), orDefault(ac.GetDataset(), "the job's own dataset"),
				ac.GetCoolDown().AsDuration()))
		}
		t.row("STATE", alertState(r.GetState())+" since "+formatTime(r.GetStateTime()))
		t.row("VALUE", formatFloat(r.GetValue()))
		t.row("ALERT", orDash(r.GetAlert()))
		t.row("CREATED", formatTime(r.GetCreateTime()))
	})
}

// condition renders a rule's condition as --when takes it.
func condition(r *evaluatorv1.AlertRule) string {
	s := r.GetSeries()
	if r.GetColumn() != "" {
		s += "{" + r.GetColumn() + "}"
	}
	for op, c := range comparisons {
		if c == r.GetComparison() {
			return fmt.Sprintf("%s %s %g", s, op, r.GetThreshold())
		}
	}
	return s
}

func alertState(s evaluatorv1.AlertState) string {
	return strings.TrimPrefix(s.String(), "ALERT_STATE_")
}

func mapString(m map[string]string) string {
	kv := make([]string, 0, len(m))
	for k, v := range m {
		kv = append(kv, k+"="+v)
	}
	slices.Sort(kv)
	return strings.Join(kv, " ")
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

package cli

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	evaluatorv1 "github.com/bmaas/bmaas/api/bmaas/evaluator/v1"
)

const policyLong = `A model's evaluation and promotion policy. Every version a training job
registers is evaluated on its job's test split and on the policy's datasets
(its metrics are then test_* and eval_<dataset>_*). With a promotion part,
each evaluated version is compared with the version holding the alias: the
alias moves to it only when its metric beats the incumbent's by --min-gain
(absolute) and --min-relative-gain (relative) and every --guard holds. Each
decision, either way, is listed by bmaas model decisions NAME.`

const policySetExample = `  bmaas model policy set bc --metric test_accuracy --alias production
  bmaas model policy set bc --dataset breast-cancer --metric eval_breast-cancer_log_loss --min-gain 0.01
  bmaas model policy set bc --guard 'test_log_loss<=0.3' --enabled=false   # decide, but move no alias`

func modelPolicyCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "policy",
		Short: "Show or set a model's evaluation datasets and promotion policy",
		Long:  policyLong,
	}
	cmd.AddCommand(modelPolicyGetCommand(g), modelPolicySetCommand(g))
	return cmd
}

func modelPolicyGetCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "get NAME",
		Short: "Show a model's evaluation and promotion policy",
		Args:  args("NAME", 1),
		RunE: func(cmd *cobra.Command, a []string) error {
			return g.withClient(cmd, func(ctx context.Context, c *client) error {
				ctx, cancel := c.call(ctx)
				defer cancel()
				p, err := getPolicy(ctx, c, a[0])
				if err != nil {
					return err
				}
				if p == nil {
					return &statusError{s: status.Newf(codes.NotFound, "model %q has no evaluation policy; set one with: "+
						"bmaas model policy set %s --metric test_accuracy --alias production", a[0], a[0])}
				}
				return printPolicy(g.printer(cmd.OutOrStdout()), p)
			})
		},
	}
}

// policyFlags are the flags of `model policy set`; only those given
// change the stored policy.
type policyFlags struct {
	datasets, guards       []string
	metric, direction      string
	alias                  string
	minGain, minRelGain    float64
	enabled, noPromotion   bool
	clearDatasets, noGuard bool
}

func modelPolicySetCommand(g *globals) *cobra.Command {
	var pf policyFlags
	cmd := &cobra.Command{
		Use:   "set NAME [--dataset NAME[@VERSION]]... [--metric M [--direction max|min] [--alias A] [--min-gain X]]",
		Short: "Set a model's evaluation datasets and promotion policy (only the flags given change)",
		Long: policyLong + "\n\nA promotion needs --metric the first time; --alias defaults to production and\n" +
			"--direction to min for metrics named like a loss or an error (loss, rmse, mse, mae,\n" +
			"error), max otherwise.",
		Example: policySetExample,
		Args:    args("NAME", 1),
		RunE: func(cmd *cobra.Command, a []string) error {
			return g.withClient(cmd, func(ctx context.Context, c *client) error {
				ctx, cancel := c.call(ctx)
				defer cancel()
				cur, err := getPolicy(ctx, c, a[0])
				if err != nil {
					return err
				}
				p, etag := &evaluatorv1.EvaluationPolicy{Model: a[0]}, ""
				if cur != nil {
					p, etag = cur, cur.Etag
				}
				if err := pf.apply(cmd, p); err != nil {
					return err
				}
				resp, err := evaluatorv1.NewEvaluatorServiceClient(c.conn).SetEvaluationPolicy(ctx,
					&evaluatorv1.SetEvaluationPolicyRequest{Policy: p, Etag: etag})
				if err != nil {
					return policyDatasetError(err, p)
				}
				return printPolicy(g.printer(cmd.OutOrStdout()), resp.GetPolicy())
			})
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&pf.datasets, "dataset", nil, "evaluate every new version on this dataset NAME[@VERSION] too (repeatable; replaces the list)")
	f.BoolVar(&pf.clearDatasets, "no-datasets", false, "evaluate on the job's test split only")
	f.StringVar(&pf.metric, "metric", "", "the metric that decides (test_accuracy, eval_DATASET_rmse, ...)")
	f.StringVar(&pf.direction, "direction", "", "max or min: which way --metric improves (default: from its name)")
	f.StringVar(&pf.alias, "alias", "", "the alias a better version takes (default production)")
	f.Float64Var(&pf.minGain, "min-gain", 0, "the least absolute improvement over the incumbent")
	f.Float64Var(&pf.minRelGain, "min-relative-gain", 0, "the least improvement relative to the incumbent's value (0.01: 1%)")
	f.StringArrayVar(&pf.guards, "guard", nil, "a bound another metric must hold: 'METRIC>=X' or 'METRIC<=X' (repeatable; replaces the list)")
	f.BoolVar(&pf.noGuard, "no-guards", false, "drop every guard")
	f.BoolVar(&pf.enabled, "enabled", true, "move the alias (false: record the decisions only)")
	f.BoolVar(&pf.noPromotion, "no-promotion", false, "remove the promotion part: evaluate only")
	return cmd
}

// apply changes p by the flags the user gave.
func (pf *policyFlags) apply(cmd *cobra.Command, p *evaluatorv1.EvaluationPolicy) error {
	changed := cmd.Flags().Changed
	if changed("dataset") || pf.clearDatasets {
		p.Datasets = nil
		for _, d := range pf.datasets {
			name, ref, err := datasetRef(d, "")
			if err != nil {
				return usageErrorf("--dataset: %v", err)
			}
			dr := &evaluatorv1.DatasetRef{Dataset: name}
			if ref != Latest {
				dr.Version, _ = strconv.ParseInt(ref, 10, 64)
			}
			p.Datasets = append(p.Datasets, dr)
		}
	}
	if pf.noPromotion {
		for _, f := range []string{"metric", "direction", "alias", "min-gain", "min-relative-gain", "guard", "enabled"} {
			if changed(f) {
				return usageErrorf("--no-promotion removes the promotion; it cannot go with --%s", f)
			}
		}
		p.Promotion = nil
		return nil
	}
	touches := false
	for _, f := range []string{"metric", "direction", "alias", "min-gain", "min-relative-gain", "guard", "no-guards", "enabled"} {
		touches = touches || changed(f)
	}
	if !touches {
		return nil
	}
	pr := p.Promotion
	if pr == nil {
		if pf.metric == "" {
			return usageErrorf("--metric is required to set a promotion (test_accuracy, say)")
		}
		pr = &evaluatorv1.PromotionPolicy{TargetAlias: "production", Enabled: true}
		p.Promotion = pr
	}
	if changed("metric") {
		pr.PrimaryMetric = pf.metric
		if !changed("direction") {
			pr.Direction = directionOf(pf.metric)
		}
	}
	if changed("direction") {
		switch strings.ToLower(pf.direction) {
		case "max", "maximize":
			pr.Direction = evaluatorv1.Direction_DIRECTION_MAXIMIZE
		case "min", "minimize":
			pr.Direction = evaluatorv1.Direction_DIRECTION_MINIMIZE
		default:
			return usageErrorf("--direction must be max or min, not %q", pf.direction)
		}
	}
	if changed("alias") {
		if err := checkAlias(pf.alias); err != nil {
			return err
		}
		pr.TargetAlias = pf.alias
	}
	for flag, v := range map[string]float64{"min-gain": pf.minGain, "min-relative-gain": pf.minRelGain} {
		if changed(flag) && (v < 0 || math.IsNaN(v)) {
			return usageErrorf("--%s must not be negative", flag)
		}
	}
	if changed("min-gain") {
		pr.MinImprovement = pf.minGain
	}
	if changed("min-relative-gain") {
		pr.MinRelativeImprovement = pf.minRelGain
	}
	if changed("guard") || pf.noGuard {
		pr.Guards = nil
		for _, s := range pf.guards {
			gd, err := parseGuard(s)
			if err != nil {
				return err
			}
			pr.Guards = append(pr.Guards, gd)
		}
	}
	if changed("enabled") {
		pr.Enabled = pf.enabled
	}
	return nil
}

// directionOf guesses which way a metric improves from its name.
func directionOf(metric string) evaluatorv1.Direction {
	m := strings.ToLower(metric)
	for _, s := range []string{"loss", "rmse", "mse", "mae", "error"} {
		if strings.Contains(m, s) {
			return evaluatorv1.Direction_DIRECTION_MINIMIZE
		}
	}
	return evaluatorv1.Direction_DIRECTION_MAXIMIZE
}

// parseGuard reads METRIC>=X or METRIC<=X.
func parseGuard(s string) (*evaluatorv1.Guard, error) {
	for _, op := range []string{">=", "<="} {
		name, val, ok := strings.Cut(s, op)
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(val), 64)
		name = strings.TrimSpace(name)
		if err != nil || name == "" || math.IsNaN(v) {
			break
		}
		if op == ">=" {
			return &evaluatorv1.Guard{Metric: name, Min: &v}, nil
		}
		return &evaluatorv1.Guard{Metric: name, Max: &v}, nil
	}
	return nil, usageErrorf("--guard %q: want METRIC>=NUMBER or METRIC<=NUMBER", s)
}

// getPolicy reads a model's policy; nil when it has none.
func getPolicy(ctx context.Context, c *client, model string) (*evaluatorv1.EvaluationPolicy, error) {
	resp, err := evaluatorv1.NewEvaluatorServiceClient(c.conn).GetEvaluationPolicy(ctx,
		&evaluatorv1.GetEvaluationPolicyRequest{Model: model})
	if status.Code(err) == codes.NotFound && strings.HasPrefix(status.Convert(err).Message(), "evaluation policy") {
		return nil, nil
	}
	return resp.GetPolicy(), err
}

// policyDatasetError names the --dataset a "policy.datasets[i]: ..."
// error is about.
func policyDatasetError(err error, p *evaluatorv1.EvaluationPolicy) error {
	s, ok := status.FromError(err)
	if !ok {
		return err
	}
	rest, ok := strings.CutPrefix(s.Message(), "policy.datasets[")
	if !ok {
		return err
	}
	i, tail, ok := strings.Cut(rest, "]")
	n, perr := strconv.Atoi(i)
	if !ok || perr != nil || n >= len(p.Datasets) {
		return err
	}
	tail = strings.TrimPrefix(strings.TrimPrefix(tail, ".dataset"), ".version")
	return &statusError{s: status.New(s.Code(), "--dataset "+p.Datasets[n].Dataset+tail)}
}

// printPolicy prints a policy as a key/value list or as json/yaml.
func printPolicy(p *printer, pol *evaluatorv1.EvaluationPolicy) error {
	return p.print(pol, func(t *table) {
		t.row("Model:", pol.GetModel())
		var ds []string
		for _, d := range pol.GetDatasets() {
			ds = append(ds, d.GetDataset()+"@"+latestOr(d.GetVersion()))
		}
		t.row("Evaluated on:", "the job's test split"+prefixed(", ", strings.Join(ds, ", ")))
		pr := pol.GetPromotion()
		if pr == nil {
			t.row("Promotion:", "none (evaluate only; set one with --metric)")
		} else {
			dir := "maximize"
			if pr.GetDirection() == evaluatorv1.Direction_DIRECTION_MINIMIZE {
				dir = "minimize"
			}
			t.row("Promotion:", fmt.Sprintf("alias %q moves to a version whose %s (%s) beats the incumbent's", pr.GetTargetAlias(),
				pr.GetPrimaryMetric(), dir))
			t.row("Least gain:", fmt.Sprintf("%s absolute, %s relative", formatFloat(pr.GetMinImprovement()),
				formatFloat(pr.GetMinRelativeImprovement())))
			var gs []string
			for _, gd := range pr.GetGuards() {
				if gd.Min != nil {
					gs = append(gs, fmt.Sprintf("%s>=%s", gd.GetMetric(), formatFloat(gd.GetMin())))
				}
				if gd.Max != nil {
					gs = append(gs, fmt.Sprintf("%s<=%s", gd.GetMetric(), formatFloat(gd.GetMax())))
				}
			}
			t.row("Guards:", orDash(strings.Join(gs, ", ")))
			enabled := "yes"
			if !pr.GetEnabled() {
				enabled = "no: decisions are recorded, the alias does not move"
			}
			t.row("Enabled:", enabled)
		}
		t.row("Updated:", formatTime(pol.GetUpdateTime()))
	})
}

func latestOr(v int64) string {
	if v <= 0 {
		return Latest
	}
	return strconv.FormatInt(v, 10)
}

package cli

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	evaluatorv1 "github.com/bmaas/bmaas/api/bmaas/evaluator/v1"
)

func modelDecisionsCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "decisions NAME",
		Short: "List the promotion decisions of a model, with their reasons",
		Long: "List the promotion decisions of a model, with their reasons. A decision is made for\n" +
			"every evaluated version once the model has a promotion policy (bmaas model policy set),\n" +
			"and for an experiment's best trial with promote_best.",
		Args: args("NAME", 1),
		RunE: func(cmd *cobra.Command, a []string) error {
			return g.withClient(cmd, func(ctx context.Context, c *client) error {
				ctx, cancel := c.call(ctx)
				defer cancel()
				resp, err := evaluatorv1.NewEvaluatorServiceClient(c.conn).ListDecisions(ctx, &evaluatorv1.ListDecisionsRequest{Model: a[0]})
				if err != nil {
					return err
				}
				if len(resp.Decisions) == 0 && g.output == "table" {
					return noDecisions(ctx, c, cmd, a[0])
				}
				return g.printer(cmd.OutOrStdout()).print(resp, func(t *table) {
					t.row("VERSION", "ALIAS", "INCUMBENT", "PROMOTED", "METRIC", "CANDIDATE", "INCUMBENT VALUE", "TIME", "REASONS")
					for _, d := range resp.Decisions {
						t.row(strconv.FormatInt(d.Version, 10), d.TargetAlias, strconv.FormatInt(d.IncumbentVersion, 10),
							strconv.FormatBool(d.Promoted), d.PrimaryMetric, formatFloat(d.CandidateValue), formatFloat(d.IncumbentValue),
							formatTime(d.CreateTime), strings.Join(d.Reasons, "; "))
					}
				})
			})
		},
	}
}

// noDecisions says why a model has no decisions yet and how to get some.
func noDecisions(ctx context.Context, c *client, cmd *cobra.Command, model string) error {
	p, err := getPolicy(ctx, c, model)
	if err != nil {
		return err
	}
	msg := fmt.Sprintf("no promotion decisions yet: model %q has no promotion policy; set one with\n"+
		"  bmaas model policy set %s --metric test_accuracy --alias production\n", model, model)
	if pr := p.GetPromotion(); pr != nil {
		msg = fmt.Sprintf("no promotion decisions yet: the policy decides whether alias %q moves once the next version "+
			"is trained and evaluated (by %s)\n", pr.GetTargetAlias(), pr.GetPrimaryMetric())
	}
	_, err = fmt.Fprint(cmd.OutOrStdout(), msg)
	return err
}

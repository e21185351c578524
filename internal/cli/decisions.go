package cli

import (
	"context"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	evaluatorv1 "github.com/bmaas/bmaas/api/bmaas/evaluator/v1"
)

func modelDecisionsCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "decisions NAME",
		Short: "List the promotion decisions of a model, with their reasons",
		Args:  args("NAME", 1),
		RunE: func(cmd *cobra.Command, a []string) error {
			return g.withClient(cmd, func(ctx context.Context, c *client) error {
				ctx, cancel := c.call(ctx)
				defer cancel()
				resp, err := evaluatorv1.NewEvaluatorServiceClient(c.conn).ListDecisions(ctx, &evaluatorv1.ListDecisionsRequest{Model: a[0]})
				if err != nil {
					return err
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

package cli

import (
	"context"
	"fmt"
	"sort"
	"strconv"

	"github.com/spf13/cobra"

	evaluatorv1 "github.com/bmaas/bmaas/api/bmaas/evaluator/v1"
)

func evaluateCommand(g *globals) *cobra.Command {
	var model, ds, job string
	cmd := &cobra.Command{
		Use:   "evaluate --model NAME@REF (--dataset NAME[@VERSION] | --job ID)",
		Short: "Evaluate a model version on a dataset or on a training job's test split",
		Long: "Evaluate a model version: the task's metrics, the confusion matrix of a classifier and\n" +
			"the drift of each input against the training data. The result is stored, attached\n" +
			"to the version as eval_<dataset>_<metric> and published.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			name, ref, err := ParseRef(model)
			if err != nil {
				return err
			}
			if (ds == "") == (job == "") {
				return usageErrorf("give one of --dataset or --job")
			}
			dsName, dsRef := ds, ""
			if ds != "" {
				if dsName, dsRef, err = ParseRef(ds); err != nil {
					return err
				}
			}
			return g.withClient(cmd, func(ctx context.Context, c *client) error {
				// Bounded only by an explicit --timeout: a version that is
				// not NATIVE is evaluated through its serving runtime, whose
				// replica may take minutes to load large weights.
				ctx, cancel := c.transfer(ctx, cmd)
				defer cancel()
				resp, err := evaluatorv1.NewEvaluatorServiceClient(c.conn).CreateEvaluation(ctx, &evaluatorv1.CreateEvaluationRequest{
					Evaluation: evaluationRequest(name, ref, dsName, dsRef, job)})
				if err != nil {
					return err
				}
				return printEvaluation(g, cmd, resp.Evaluation)
			})
		},
	}
	cmd.Flags().StringVar(&model, "model", "", "model version, NAME@REF (REF: number, alias or latest)")
	cmd.Flags().StringVar(&ds, "dataset", "", "dataset, NAME or NAME@VERSION")
	cmd.Flags().StringVar(&job, "job", "", "training job whose held-out test split to evaluate on")
	return cmd
}

// evaluationRequest names the version and dataset version by number where
// the reference is one; an alias (or a dataset reference the evaluator will
// refuse, naming it) still goes in the string fields.
func evaluationRequest(model, ref, dataset, dsRef, job string) *evaluatorv1.Evaluation {
	ev := &evaluatorv1.Evaluation{Model: model, Dataset: dataset, JobId: job}
	if n, err := strconv.ParseInt(ref, 10, 64); err == nil && n > 0 {
		ev.ModelVersion = n
	} else {
		ev.Version = ref
	}
	if n, err := strconv.ParseInt(dsRef, 10, 64); err == nil && n > 0 {
		ev.DatasetVersionNumber = n
	} else if dsRef != "latest" {
		ev.DatasetVersion = dsRef
	}
	return ev
}

// splitName is the split an evaluation scored, as the CLI prints it.
func splitName(ev *evaluatorv1.Evaluation) string {
	switch ev.GetSplitKind() {
	case evaluatorv1.EvaluationSplit_EVALUATION_SPLIT_ALL:
		return "all"
	case evaluatorv1.EvaluationSplit_EVALUATION_SPLIT_TEST:
		return "test"
	}
	return ev.GetSplit()
}

// versionName is a version number as the CLI prints it, from the int64
// field or, from an evaluator before it, the string.
func versionName(n int64, s string) string {
	if n > 0 {
		return strconv.FormatInt(n, 10)
	}
	return s
}

func printEvaluation(g *globals, cmd *cobra.Command, ev *evaluatorv1.Evaluation) error {
	p := g.printer(cmd.OutOrStdout())
	return p.print(ev, func(t *table) {
		t.row("EVALUATION", ev.Id)
		t.row("MODEL", fmt.Sprintf("%s@%s", ev.Model, versionName(ev.ModelVersion, ev.Version)))
		t.row("DATASET", fmt.Sprintf("%s@%s (%s, %d rows)", ev.Dataset,
			versionName(ev.DatasetVersionNumber, ev.DatasetVersion), splitName(ev), ev.Rows))
		names := make([]string, 0, len(ev.Metrics))
		for k := range ev.Metrics {
			names = append(names, k)
		}
		sort.Strings(names)
		for _, k := range names {
			t.row("  "+k, formatFloat(ev.Metrics[k]))
		}
		if cm := ev.ConfusionMatrix; cm != nil {
			t.row("CONFUSION", fmt.Sprintf("labels %v, rows true, columns predicted: %v", cm.Labels, cm.Counts))
		}
		t.row("DRIFT (PSI)", formatFloat(ev.DriftScore))
		for _, d := range ev.Drift {
			flag := ""
			if d.Drifted {
				flag = "  DRIFTED"
			}
			t.row("  "+d.Column, fmt.Sprintf("psi %s  ks %s  mean shift %s std%s", formatFloat(d.Psi), formatFloat(d.Ks), formatFloat(d.MeanShift), flag))
		}
	})
}

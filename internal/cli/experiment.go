package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/encoding/protojson"
	"gopkg.in/yaml.v3"

	evaluatorv1 "github.com/bmaas/bmaas/api/bmaas/evaluator/v1"
)

func experimentCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "experiment",
		Aliases: []string{"experiments", "exp"},
		Short:   "Run hyperparameter searches (grid, random, TPE, ASHA, Hyperband)",
	}
	cmd.AddCommand(experimentCreateCommand(g), experimentGetCommand(g), experimentListCommand(g),
		experimentTrialsCommand(g), experimentStateCommand(g, "cancel"), experimentStateCommand(g, "pause"),
		experimentStateCommand(g, "resume"))
	return cmd
}

// readExperiment reads a YAML or JSON spec; parameter types may be written
// short (log_uniform) and are expanded to the enum names.
func readExperiment(path string) (*evaluatorv1.Experiment, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, usageErrorf("-f: %v", err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, usageErrorf("%s: %v", path, err)
	}
	if ps, ok := doc["params"].([]any); ok {
		for _, p := range ps {
			if m, ok := p.(map[string]any); ok {
				if t, ok := m["type"].(string); ok && !strings.HasPrefix(t, "PARAM_TYPE_") {
					m["type"] = "PARAM_TYPE_" + strings.ToUpper(t)
				}
			}
		}
	}
	js, err := json.Marshal(doc)
	if err != nil {
		return nil, usageErrorf("%s: %v", path, err)
	}
	x := &evaluatorv1.Experiment{}
	if err := protojson.Unmarshal(js, x); err != nil {
		return nil, usageErrorf("%s: %v", path, err)
	}
	experimentEnums(x)
	return x, nil
}

// experimentEnums sets the searcher and direction enums a spec names by
// their short strings (searcher: asha, mode: min). The strings stay too,
// for an evaluator from before the enums; one the CLI does not know is left
// to the evaluator, which names the field it refuses.
func experimentEnums(x *evaluatorv1.Experiment) {
	if k, ok := evaluatorv1.Searcher_value["SEARCHER_"+strings.ToUpper(x.Searcher)]; ok && x.Searcher != "" &&
		x.SearcherKind == evaluatorv1.Searcher_SEARCHER_UNSPECIFIED {
		x.SearcherKind = evaluatorv1.Searcher(k)
	}
	if d, ok := map[string]evaluatorv1.Direction{"max": evaluatorv1.Direction_DIRECTION_MAXIMIZE,
		"min": evaluatorv1.Direction_DIRECTION_MINIMIZE}[x.Mode]; ok && x.Direction == evaluatorv1.Direction_DIRECTION_UNSPECIFIED {
		x.Direction = d
	}
}

func experimentCreateCommand(g *globals) *cobra.Command {
	var file string
	var wait bool
	cmd := &cobra.Command{
		Use:   "create -f SPEC.yaml [--wait]",
		Short: "Start an experiment; --wait follows its trials live until it ends",
		Long: "Start an experiment from a YAML or JSON spec (examples/experiments/). --wait follows its\n" +
			"trials until it ends: on a terminal a table redrawn in place, best trial first; into a pipe\n" +
			"or a file a line per change; with -o json|yaml the experiment once it ends.\n\n" +
			"promote_best: true sends the best trial's version through the model's promotion policy\n" +
			"(bmaas model policy set) when the experiment succeeds; a model without one is promoted by\n" +
			"the experiment's own metric and mode to the alias production, and bmaas model decisions\n" +
			"shows the decision.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			x, err := readExperiment(file)
			if err != nil {
				return err
			}
			return g.withClient(cmd, func(ctx context.Context, c *client) error {
				ec := evaluatorv1.NewEvaluatorServiceClient(c.conn)
				cctx, cancel := c.call(ctx)
				resp, err := ec.CreateExperiment(cctx, &evaluatorv1.CreateExperimentRequest{Experiment: x})
				cancel()
				if err != nil {
					return err
				}
				if !wait {
					return printExperiment(g, cmd, resp.Experiment)
				}
				return followExperiment(ctx, g, cmd, c, ec, resp.Experiment.Id)
			})
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "experiment spec (YAML or JSON)")
	cmd.Flags().BoolVar(&wait, "wait", false, "follow the trials until the experiment ends")
	_ = cmd.MarkFlagRequired("file")
	return cmd
}

func expState(s fmt.Stringer) string {
	n := s.String()
	if i := strings.LastIndex(n, "_STATE_"); i >= 0 {
		n = n[i+len("_STATE_"):]
	}
	return strings.ToLower(n)
}

func trialRows(t *table, trials []*evaluatorv1.Trial, searcher string) {
	t.row("TRIAL", "PARAMS", "EPOCHS", "VALUE", "STATE", "JOB")
	for _, tr := range trials {
		t.row(tr.Id, trialParams(tr), fmt.Sprintf("%d/%d", tr.Epochs, tr.TargetEpochs), trialValue(tr), trialState(tr, searcher), orDash(tr.JobId))
	}
}

// trialParams prints a trial's hyperparameters as sorted k=v pairs.
func trialParams(tr *evaluatorv1.Trial) string {
	keys := make([]string, 0, len(tr.Params))
	for k := range tr.Params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	ps := make([]string, 0, len(keys))
	for _, k := range keys {
		ps = append(ps, k+"="+tr.Params[k])
	}
	return strings.Join(ps, " ")
}

func trialValue(tr *evaluatorv1.Trial) string {
	if !tr.HasValue {
		return "-"
	}
	return formatFloat(tr.Value)
}

// trialState is the state, with the rung (counted from 0) where ASHA or
// Hyperband stopped a trial.
func trialState(tr *evaluatorv1.Trial, searcher string) string {
	s := expState(tr.State)
	if tr.State == evaluatorv1.TrialState_TRIAL_STATE_STOPPED && (searcher == "asha" || searcher == "hyperband") {
		s += fmt.Sprintf(" (rung %d)", tr.Rung)
	}
	return s
}

// sortTrials orders trials best first by the experiment's mode (max or
// min); trials without a value come last, each group by id.
func sortTrials(trials []*evaluatorv1.Trial, mode string) {
	sort.SliceStable(trials, func(i, j int) bool {
		a, b := trials[i], trials[j]
		switch {
		case a.HasValue != b.HasValue:
			return a.HasValue
		case !a.HasValue || a.Value == b.Value:
			return a.Id < b.Id
		case mode == "min":
			return a.Value < b.Value
		}
		return a.Value > b.Value
	})
}

func printExperiment(g *globals, cmd *cobra.Command, x *evaluatorv1.Experiment) error {
	return g.printer(cmd.OutOrStdout()).print(x, func(t *table) {
		t.row("ID", x.Id)
		t.row("NAME", x.Name)
		t.row("MODEL", x.Model)
		t.row("SEARCHER", x.Searcher)
		t.row("METRIC", x.Metric+" ("+x.Mode+")")
		t.row("STATE", expState(x.State))
		t.row("TRIALS", fmt.Sprintf("%d created, %d completed of %d (parallelism %d)", x.TrialsCreated, x.TrialsCompleted, x.MaxTrials, x.Parallelism))
		t.row("BEST", bestString(x))
		t.row("EPOCHS USED", fmt.Sprint(x.EpochsUsed))
	})
}

func experimentGetCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use: "get ID", Short: "Show an experiment", Args: args("ID", 1),
		RunE: func(cmd *cobra.Command, a []string) error {
			return g.withClient(cmd, func(ctx context.Context, c *client) error {
				ctx, cancel := c.call(ctx)
				defer cancel()
				resp, err := evaluatorv1.NewEvaluatorServiceClient(c.conn).GetExperiment(ctx, &evaluatorv1.GetExperimentRequest{Id: a[0]})
				if err != nil {
					return err
				}
				return printExperiment(g, cmd, resp.Experiment)
			})
		},
	}
}

func experimentListCommand(g *globals) *cobra.Command {
	var model string
	cmd := &cobra.Command{
		Use: "list", Short: "List experiments", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.withClient(cmd, func(ctx context.Context, c *client) error {
				ctx, cancel := c.call(ctx)
				defer cancel()
				resp, err := evaluatorv1.NewEvaluatorServiceClient(c.conn).ListExperiments(ctx, &evaluatorv1.ListExperimentsRequest{Model: model})
				if err != nil {
					return err
				}
				return g.printer(cmd.OutOrStdout()).print(resp, func(t *table) {
					t.row("ID", "NAME", "MODEL", "SEARCHER", "STATE", "TRIALS", "BEST", "CREATED")
					for _, x := range resp.Experiments {
						t.row(x.Id, x.Name, x.Model, x.Searcher, expState(x.State), fmt.Sprintf("%d/%d", x.TrialsCompleted, x.MaxTrials),
							bestValue(x), formatTime(x.CreateTime))
					}
				})
			})
		},
	}
	cmd.Flags().StringVar(&model, "model", "", "only experiments of this model")
	return cmd
}

func experimentTrialsCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use: "trials ID", Short: "List an experiment's trials, best first by its metric", Args: args("ID", 1),
		RunE: func(cmd *cobra.Command, a []string) error {
			return g.withClient(cmd, func(ctx context.Context, c *client) error {
				ctx, cancel := c.call(ctx)
				defer cancel()
				ec := evaluatorv1.NewEvaluatorServiceClient(c.conn)
				x, err := ec.GetExperiment(ctx, &evaluatorv1.GetExperimentRequest{Id: a[0]})
				if err != nil {
					return err
				}
				resp, err := ec.ListTrials(ctx, &evaluatorv1.ListTrialsRequest{ExperimentId: a[0]})
				if err != nil {
					return err
				}
				sortTrials(resp.Trials, x.GetExperiment().GetMode())
				return g.printer(cmd.OutOrStdout()).print(resp, func(t *table) { trialRows(t, resp.Trials, x.GetExperiment().GetSearcher()) })
			})
		},
	}
}

func experimentStateCommand(g *globals, verb string) *cobra.Command {
	return &cobra.Command{
		Use: verb + " ID", Short: strings.ToUpper(verb[:1]) + verb[1:] + " an experiment", Args: args("ID", 1),
		RunE: func(cmd *cobra.Command, a []string) error {
			return g.withClient(cmd, func(ctx context.Context, c *client) error {
				ctx, cancel := c.call(ctx)
				defer cancel()
				ec := evaluatorv1.NewEvaluatorServiceClient(c.conn)
				var x *evaluatorv1.Experiment
				var err error
				switch verb {
				case "cancel":
					var r *evaluatorv1.CancelExperimentResponse
					r, err = ec.CancelExperiment(ctx, &evaluatorv1.CancelExperimentRequest{Id: a[0]})
					x = r.GetExperiment()
				case "pause":
					var r *evaluatorv1.PauseExperimentResponse
					r, err = ec.PauseExperiment(ctx, &evaluatorv1.PauseExperimentRequest{Id: a[0]})
					x = r.GetExperiment()
				default:
					var r *evaluatorv1.ResumeExperimentResponse
					r, err = ec.ResumeExperiment(ctx, &evaluatorv1.ResumeExperimentRequest{Id: a[0]})
					x = r.GetExperiment()
				}
				if err != nil {
					return err
				}
				return printExperiment(g, cmd, x)
			})
		},
	}
}

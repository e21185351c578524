package mlcli

import (
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"

	"github.com/bmaas/bmaas/pkg/ml/dataset"
	"github.com/bmaas/bmaas/pkg/ml/train"
	"github.com/spf13/cobra"
)

func trainCommand() *cobra.Command {
	var (
		spec     train.Spec
		data     string
		out      string
		params   []string
		features string
		quiet    bool
	)
	cmd := &cobra.Command{
		Use:   "train --data FILE.csv --target COLUMN --algorithm NAME [--param k=v ...] --out MODEL.bmaas",
		Short: "Train a model on a CSV file and write the artifact",
		Example: "  bmaas ml train --data iris.csv --target target --algorithm mlp --param hidden=64,64 --param lr=0.01 --out iris.bmaas\n" +
			"  bmaas ml train --data diabetes.csv --target target --algorithm ridge --param alpha=0.5 --out diabetes.bmaas",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			spec.Params = map[string]string{}
			for _, p := range params {
				k, v, ok := strings.Cut(p, "=")
				if !ok || k == "" {
					return fmt.Errorf("--param %q: want name=value", p)
				}
				spec.Params[strings.TrimSpace(k)] = v
			}
			if features != "" {
				spec.Features = strings.Split(features, ",")
			}
			f, err := dataset.ReadFile(data, dataset.ReadOptions{})
			if err != nil {
				return err
			}
			bar := newProgress(cmd.ErrOrStderr(), total(spec), quiet || !isTerminal(cmd.ErrOrStderr()))
			m, err := train.Run(cmd.Context(), spec, f, train.Callbacks{OnEvent: bar.event})
			bar.done()
			if err != nil {
				return err
			}
			if err := m.Save(out); err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			task := strings.ToLower(strings.TrimPrefix(m.Proto.Task.String(), "TASK_"))
			byName := map[string]map[string]float64{}
			for _, x := range m.Proto.Metrics {
				if byName[x.Split] == nil {
					byName[x.Split] = map[string]float64{}
				}
				byName[x.Split][x.Name] = x.Value
			}
			if done, err := printData(cmd, w, trainResult{Model: out, Algorithm: spec.Algorithm, Task: task, Metrics: byName}); done {
				return err
			}
			fmt.Fprintf(w, "model written to %s (%s, %s)\n", out, spec.Algorithm, task)
			for _, split := range []string{"train", "validation", "test"} {
				if byName[split] != nil {
					printMetrics(w, split, byName[split])
				}
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&data, "data", "", "training CSV (header row)")
	fl.StringVar(&spec.Target, "target", "target", "column to predict")
	fl.StringVar(&spec.Algorithm, "algorithm", "", "one of "+strings.Join(train.Algorithms(), ", "))
	fl.StringArrayVar(&params, "param", nil, "hyperparameter name=value (repeatable)")
	fl.StringVar(&features, "features", "", "comma-separated input columns (default: all but the target)")
	fl.StringVar(&spec.Task, "task", "", "regression or classification (default: from the algorithm and target)")
	fl.Float64Var(&spec.Test, "test", 0, "fraction of rows held out for testing (default 0.2; negative: none)")
	fl.Float64Var(&spec.Validation, "validation", 0, "fraction held out for early stopping (default 0.1 with patience; negative: none)")
	fl.Uint64Var(&spec.Seed, "seed", 1, "seed of the split, initialisation and sampling")
	fl.StringVar(&out, "out", "model.bmaas", "artifact file to write")
	fl.BoolVarP(&quiet, "quiet", "q", false, "no progress bar (there is none unless stderr is a terminal)")
	_ = cmd.MarkFlagRequired("data")
	_ = cmd.MarkFlagRequired("algorithm")
	return cmd
}

// trainResult is what ml train prints with -o json|yaml.
type trainResult struct {
	Model     string `json:"model" yaml:"model"`
	Algorithm string `json:"algorithm" yaml:"algorithm"`
	Task      string `json:"task" yaml:"task"`
	// Metrics by split (train, validation, test), then by name.
	Metrics map[string]map[string]float64 `json:"metrics" yaml:"metrics"`
}

// total is the number of epochs or rounds, for the progress bar.
func total(spec train.Spec) int {
	key := map[string]string{"mlp": "epochs", "gbdt": "rounds"}[spec.Algorithm]
	if key == "" {
		return 0
	}
	p, err := train.ParseParams(spec.Algorithm, spec.Params)
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(p.Map()[key])
	return n
}

func printMetrics(w io.Writer, split string, ms map[string]float64) {
	names := make([]string, 0, len(ms))
	for n := range ms {
		names = append(names, n)
	}
	sort.Strings(names)
	fmt.Fprintf(w, "%s:\n", split)
	for _, n := range names {
		fmt.Fprintf(w, "  %-20s %.6f\n", n, ms[n])
	}
}

// progress draws a one-line progress bar.
type progress struct {
	w         io.Writer
	total     int
	quiet     bool
	loss, val string
	drawn     bool
}

func newProgress(w io.Writer, total int, quiet bool) *progress {
	return &progress{w: w, total: total, quiet: quiet || total == 0}
}

func (p *progress) event(e train.Event) {
	if p.quiet || e.Final {
		return
	}
	if e.Split == "train" {
		p.loss, p.val = fmt.Sprintf(" loss %.4f", e.Metrics["loss"]), ""
	} else {
		p.val = fmt.Sprintf(" val_loss %.4f", e.Metrics["loss"])
	}
	const width = 30
	n := min(width, e.Step*width/max(p.total, 1))
	fmt.Fprintf(p.w, "\r[%s%s] %d/%d%s%s   ", strings.Repeat("=", n), strings.Repeat(" ", width-n), e.Step, p.total, p.loss, p.val)
	p.drawn = true
}

func (p *progress) done() {
	if p.drawn {
		fmt.Fprintln(p.w)
	}
}

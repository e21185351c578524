package cli

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	evaluatorv1 "github.com/bmaas/bmaas/api/bmaas/evaluator/v1"
)

// experimentPoll is how often --wait reads the experiment.
const experimentPoll = time.Second

// followExperiment follows an experiment until it ends. On a terminal the
// summary and the trial table are redrawn in place; into a pipe or a file
// only what changed is printed, a line each; with -o json|yaml nothing is
// printed until the end, then the experiment.
func followExperiment(ctx context.Context, g *globals, cmd *cobra.Command, c *client, ec evaluatorv1.EvaluatorServiceClient, id string) error {
	p := g.printer(cmd.OutOrStdout())
	w := &expWatcher{w: cmd.OutOrStdout(), tty: isTerminal(cmd.OutOrStdout()), rows: map[string]string{}}
	for {
		cctx, cancel := c.call(ctx)
		xr, err := ec.GetExperiment(cctx, &evaluatorv1.GetExperimentRequest{Id: id})
		x := xr.GetExperiment()
		var trials *evaluatorv1.ListTrialsResponse
		if err == nil {
			trials, err = ec.ListTrials(cctx, &evaluatorv1.ListTrialsRequest{ExperimentId: id})
		}
		cancel()
		if err != nil {
			return err
		}
		ended := x.State != evaluatorv1.ExperimentState_EXPERIMENT_STATE_RUNNING && x.State != evaluatorv1.ExperimentState_EXPERIMENT_STATE_PAUSED
		if p.structured() {
			if ended {
				return printExperiment(g, cmd, x)
			}
		} else {
			w.show(x, trials.GetTrials())
		}
		if ended {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(experimentPoll):
		}
	}
}

// expWatcher draws the snapshots of a followed experiment.
type expWatcher struct {
	w   io.Writer
	tty bool
	// last and lines: what was drawn last on the terminal, and its height.
	last  string
	lines int
	// head and rows: the last summary and trial lines printed to a pipe.
	head string
	rows map[string]string
}

func (e *expWatcher) show(x *evaluatorv1.Experiment, trials []*evaluatorv1.Trial) {
	head := fmt.Sprintf("experiment %s  %s  trials %d/%d  best %s", x.Id, expState(x.State), x.TrialsCompleted, x.MaxTrials, bestString(x))
	sortTrials(trials, x.Mode)
	if e.tty {
		var sb strings.Builder
		sb.WriteString(head + "\n")
		t := newTable(&sb)
		trialRows(t, trials, x.Searcher)
		_ = t.flush()
		out := sb.String()
		if out == e.last {
			return
		}
		if e.lines > 0 {
			fmt.Fprintf(e.w, "\x1b[%dA\x1b[J", e.lines) // up to the first line drawn, clear below
		}
		fmt.Fprint(e.w, out)
		e.last, e.lines = out, strings.Count(out, "\n")
		return
	}
	if head != e.head {
		fmt.Fprintln(e.w, head)
		e.head = head
	}
	for _, tr := range trials {
		line := fmt.Sprintf("trial %s %s  %s  epochs %d/%d  value %s  job %s", tr.Id, trialState(tr, x.Searcher), trialParams(tr),
			tr.Epochs, tr.TargetEpochs, trialValue(tr), orDash(tr.JobId))
		if e.rows[tr.Id] != line {
			fmt.Fprintln(e.w, line)
			e.rows[tr.Id] = line
		}
	}
}

// bestString is the best trial and its value, or "-" before there is one.
func bestString(x *evaluatorv1.Experiment) string {
	if x.GetBestTrialId() == "" {
		return "-"
	}
	return x.GetBestTrialId() + " " + formatFloat(x.GetBestValue())
}

// bestValue is the best trial's value, or "-" before there is one.
func bestValue(x *evaluatorv1.Experiment) string {
	if x.GetBestTrialId() == "" {
		return "-"
	}
	return formatFloat(x.GetBestValue())
}

package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	schedulerv1 "github.com/bmaas/bmaas/api/bmaas/scheduler/v1"
	"github.com/spf13/cobra"
)

func jobCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "job",
		Aliases: []string{"jobs"},
		Short:   "List, inspect, follow and cancel training jobs",
	}
	cmd.AddCommand(jobListCommand(g), jobGetCommand(g), jobLogsCommand(g), jobCancelCommand(g), jobWatchCommand(g))
	return cmd
}

// parseJobState accepts running, RUNNING or JOB_STATE_RUNNING.
func parseJobState(s string) (schedulerv1.JobState, error) {
	if s == "" {
		return schedulerv1.JobState_JOB_STATE_UNSPECIFIED, nil
	}
	name := "JOB_STATE_" + strings.TrimPrefix(strings.ToUpper(s), "JOB_STATE_")
	if v, ok := schedulerv1.JobState_value[name]; ok && v != 0 {
		return schedulerv1.JobState(v), nil
	}
	return 0, usageErrorf("--state must be queued, scheduled, running, succeeded, failed or cancelled, not %q", s)
}

// stateName prints a state without its prefix: RUNNING.
func stateName(s schedulerv1.JobState) string {
	if s == schedulerv1.JobState_JOB_STATE_UNSPECIFIED {
		return "-"
	}
	return strings.TrimPrefix(s.String(), "JOB_STATE_")
}

func jobListCommand(g *globals) *cobra.Command {
	var state, model, kind string
	var labels []string
	var pageSize int32
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List training jobs (all pages); filter by state, model and labels, --kind for serving replicas",
		Long: "List training jobs (all pages). With a project (--project, BMAAS_PROJECT or the context's), only\n" +
			"that project's jobs; otherwise those of every project you may read.",
		Args: args("no arguments", 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := parseJobState(state)
			if err != nil {
				return err
			}
			keep, err := jobKind(kind)
			if err != nil {
				return err
			}
			sel, err := labelSelector(labels)
			if err != nil {
				return err
			}
			return g.withClient(cmd, func(ctx context.Context, c *client) error {
				req := &schedulerv1.ListJobsRequest{PageSize: pageSize, State: st, Model: model, LabelSelector: sel, Project: g.project}
				items, err := allPages(ctx, c, func(ctx context.Context, token string) ([]*schedulerv1.Job, string, error) {
					req.PageToken = token
					resp, err := c.scheduler().ListJobs(ctx, req)
					return resp.GetJobs(), resp.GetNextPageToken(), err
				})
				if err != nil {
					return err
				}
				all := &schedulerv1.ListJobsResponse{Jobs: slices.DeleteFunc(items, func(j *schedulerv1.Job) bool { return !keep(j) })}
				return g.printer(cmd.OutOrStdout()).print(all, func(t *table) { jobRows(t, all.GetJobs()) })
			})
		},
	}
	cmd.Flags().StringVar(&state, "state", "", "only jobs in this state (queued, running, succeeded, ...)")
	cmd.Flags().StringVar(&model, "model", "", "only jobs of this model")
	cmd.Flags().StringVar(&kind, "kind", "training", "training (builtin and process jobs), serving (deployments' replicas) or all")
	cmd.Flags().StringArrayVar(&labels, "label", nil, "only jobs with label key=value (repeatable)")
	cmd.Flags().Int32Var(&pageSize, "page-size", 0, "jobs fetched per request (0: server default)")
	return cmd
}

// jobKind returns the filter of job list --kind.
func jobKind(kind string) (func(*schedulerv1.Job) bool, error) {
	serving := func(j *schedulerv1.Job) bool { return j.GetSpec().GetServing() != nil }
	switch kind {
	case "training":
		return func(j *schedulerv1.Job) bool { return !serving(j) }, nil
	case "serving":
		return serving, nil
	case "all":
		return func(*schedulerv1.Job) bool { return true }, nil
	}
	return nil, usageErrorf("--kind must be training, serving or all, not %q", kind)
}

// jobRows prints the job table.
func jobRows(t *table, jobs []*schedulerv1.Job) {
	t.row("ID", "PROJECT", "MODEL", "RUNTIME", "STATE", "STEP", "RESTARTS", "NODES", "VERSION", "CREATED", "REASON")
	for _, j := range jobs {
		t.row(j.GetId(), orDash(j.GetSpec().GetProject()), j.GetSpec().GetModel(), runtimeName(j.GetSpec()), stateName(j.GetState()),
			fmt.Sprint(j.GetStep()), fmt.Sprint(j.GetRestarts()), orDash(strings.Join(j.GetNodes(), ",")),
			latestString(j.GetModelVersion()), formatTime(j.GetCreateTime()), orDash(truncate(j.GetReason(), 60)))
	}
}

// runtimeName is "builtin:logistic" or "process:python3".
func runtimeName(s *schedulerv1.JobSpec) string {
	switch {
	case s.GetBuiltin() != nil:
		return "builtin:" + s.GetBuiltin().GetAlgorithm()
	case s.GetProcess() != nil:
		cmd := s.GetProcess().GetCommand()
		return "process:" + cmd[strings.LastIndex(cmd, "/")+1:]
	case s.GetServing() != nil:
		return fmt.Sprintf("serving:%s@%d", s.GetServing().GetDeployment(), s.GetServing().GetVersion())
	}
	return "-"
}

// truncate shortens s to n runes on one line.
func truncate(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

func jobGetCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "get ID",
		Short: "Show a job: spec, state, history, metrics",
		Args:  args("ID", 1),
		RunE: func(cmd *cobra.Command, a []string) error {
			return g.withClient(cmd, func(ctx context.Context, c *client) error {
				ctx, cancel := c.call(ctx)
				defer cancel()
				resp, err := c.scheduler().GetJob(ctx, &schedulerv1.GetJobRequest{Id: a[0]})
				if err != nil {
					return err
				}
				return printJob(g.printer(cmd.OutOrStdout()), resp.GetJob())
			})
		},
	}
}

func jobLogsCommand(g *globals) *cobra.Command {
	var follow bool
	var tail int32
	cmd := &cobra.Command{
		Use:   "logs ID",
		Short: "Print a job's log (with -f, keep printing new lines until it ends)",
		Args:  args("ID", 1),
		RunE: func(cmd *cobra.Command, a []string) error {
			if tail < 0 {
				return usageErrorf("--tail must not be negative")
			}
			return g.withClient(cmd, func(ctx context.Context, c *client) error {
				ctx, cancel := c.transfer(ctx, cmd)
				defer cancel()
				stream, err := c.scheduler().GetJobLogs(ctx, &schedulerv1.GetJobLogsRequest{Id: a[0], Follow: follow, TailLines: tail})
				if err != nil {
					return err
				}
				return copyLogs(cmd.OutOrStdout(), stream.Recv)
			})
		},
	}
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "wait for new lines until the job ends (Ctrl-C to stop)")
	cmd.Flags().Int32Var(&tail, "tail", 0, "start with the last N lines only (0: all)")
	return cmd
}

// copyLogs writes every received line to w until the stream ends.
func copyLogs(w io.Writer, recv func() (*schedulerv1.GetJobLogsResponse, error)) error {
	for {
		msg, err := recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		for _, line := range msg.GetLines() {
			if _, err := io.WriteString(w, strings.TrimSuffix(line, "\n")+"\n"); err != nil {
				return err
			}
		}
	}
}

func jobCancelCommand(g *globals) *cobra.Command {
	var reason string
	cmd := &cobra.Command{
		Use:   "cancel ID",
		Short: "Cancel a job; its workers are stopped",
		Args:  args("ID", 1),
		RunE: func(cmd *cobra.Command, a []string) error {
			return g.withClient(cmd, func(ctx context.Context, c *client) error {
				ctx, cancel := c.call(ctx)
				defer cancel()
				resp, err := c.scheduler().CancelJob(ctx, &schedulerv1.CancelJobRequest{Id: a[0], Reason: reason})
				if err != nil {
					return err
				}
				if g.output != "table" {
					return g.printer(cmd.OutOrStdout()).message(resp.GetJob())
				}
				return done(g, cmd, "job %s: %s", a[0], stateName(resp.GetJob().GetState()))
			})
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why, recorded in the job's history")
	return cmd
}

func jobWatchCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "watch ID",
		Short: "Follow a job until it ends; exit 0 only when it SUCCEEDED",
		Long: "Follow a job until it ends: state changes and a live progress line (step,\n" +
			"loss, validation metrics) on stderr, then the final job on stdout. The exit\n" +
			"status is 0 only when the job SUCCEEDED. Ctrl-C stops watching, not the job.",
		Args: args("ID", 1),
		RunE: func(cmd *cobra.Command, a []string) error {
			return g.withClient(cmd, func(ctx context.Context, c *client) error {
				cctx, cancel := c.call(ctx)
				resp, err := c.scheduler().GetJob(cctx, &schedulerv1.GetJobRequest{Id: a[0]})
				cancel()
				if err != nil {
					return err
				}
				return waitJob(ctx, g, cmd, c, resp.GetJob())
			})
		},
	}
}

// printJob prints one job as a key/value list with its history.
func printJob(p *printer, j *schedulerv1.Job) error {
	return p.print(j, func(t *table) {
		s := j.GetSpec()
		r := s.GetResources()
		t.row("ID:", j.GetId())
		t.row("Name:", orDash(s.GetName()))
		t.row("Project:", orDash(s.GetProject()))
		t.row("Model:", s.GetModel())
		t.row("State:", stateName(j.GetState()))
		t.row("Reason:", orDash(j.GetReason()))
		t.row("Runtime:", runtimeDetail(s))
		t.row("Resources:", fmt.Sprintf("cpu %s, memory %s, gpus %d%s, workers %d", formatCPU(r.GetCpuMillis()),
			humanSize(r.GetMemoryBytes()), r.GetGpus(), prefixed(" ", r.GetGpuModel()), max(s.GetWorkers(), 1)))
		t.row("Scheduling:", fmt.Sprintf("priority %d, preemptible %t, pool %s, max restarts %d",
			s.GetPriority(), s.GetPreemptible(), orDash(s.GetPool()), s.GetMaxRestarts()))
		t.row("Nodes:", orDash(strings.Join(j.GetNodes(), ",")))
		t.row("Progress:", fmt.Sprintf("step %d, checkpoint at step %d, restarts %d, preemptions %d",
			j.GetStep(), j.GetCheckpointStep(), j.GetRestarts(), j.GetPreemptions()))
		t.row("Model version:", latestString(j.GetModelVersion()))
		t.row("Labels:", joinMap(s.GetLabels()))
		t.row("Created:", formatTime(j.GetCreateTime()))
		t.row("Updated:", formatTime(j.GetUpdateTime()))
		t.row("")
		t.row("TIME", "STATE", "REASON")
		for _, h := range j.GetHistory() {
			t.row(formatTime(h.GetTime()), stateName(h.GetState()), orDash(h.GetReason()))
		}
		if len(j.GetMetrics()) > 0 {
			t.row("")
			t.row("METRIC", "VALUE")
			for _, k := range slices.Sorted(maps.Keys(j.GetMetrics())) {
				t.row(k, formatFloat(j.GetMetrics()[k]))
			}
		}
	})
}

// runtimeDetail describes what the job runs.
func runtimeDetail(s *schedulerv1.JobSpec) string {
	if b := s.GetBuiltin(); b != nil {
		return fmt.Sprintf("builtin %s on %s@%d, target %s, params %s", b.GetAlgorithm(), b.GetDataset(),
			b.GetDatasetVersion(), orDash(b.GetTargetColumn()), joinMap(b.GetHyperparameters()))
	}
	if p := s.GetProcess(); p != nil {
		where := prefixed(", workdir ", p.GetWorkdir())
		if p.GetCodeBundleSha256() != "" {
			where = ", bundle " + shortDigest(p.GetCodeBundleSha256()) + where
		}
		data := ""
		if p.GetDataset() != "" {
			data = fmt.Sprintf(", dataset %s@%d", p.GetDataset(), p.GetDatasetVersion())
		}
		return fmt.Sprintf("process %s%s%s, params %s", strings.Join(append([]string{p.GetCommand()}, p.GetArgs()...), " "),
			where, data, joinMap(p.GetHyperparameters()))
	}
	return "-"
}

// prefixed returns prefix+s, or "" when s is empty.
func prefixed(prefix, s string) string {
	if s == "" {
		return ""
	}
	return prefix + s
}

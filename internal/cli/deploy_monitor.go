package cli

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/timestamppb"

	evaluatorv1 "github.com/bmaas/bmaas/api/bmaas/evaluator/v1"
)

// deployFeedbackCommand is `bmaas deploy feedback NAME`: the ground truth
// of logged requests, by request id.
func deployFeedbackCommand(g *globals) *cobra.Command {
	var id, file string
	var labels []string
	var values []float64
	cmd := &cobra.Command{
		Use:   "feedback NAME --request-id ID (--label L... | --value V...) | feedback NAME -f FILE",
		Short: "Give the ground truth of logged requests (one label or value per row), however late",
		Long: "Record what a logged request's rows really were: labels for a classifier, values for a\n" +
			"regressor, one per row of the request. The request id is the X-Request-Id its client got back;\n" +
			"the deployment must log its payloads (deploy create --log-payloads). Feedback counts in the\n" +
			"monitoring window of its prediction however late it comes (bmaas deploy monitor). -f reads\n" +
			"JSON lines: {\"request_id\": \"...\", \"labels\": [\"1\"]} or {\"request_id\": \"...\", \"values\": [3.2]}.",
		Example: "  bmaas deploy feedback iris --request-id 0f3c2a --label 2\n  bmaas deploy feedback iris -f feedback.jsonl",
		Args:    args("NAME", 1),
		RunE: func(cmd *cobra.Command, a []string) error {
			req := &evaluatorv1.SubmitFeedbackRequest{Deployment: a[0]}
			fieldsOf := fieldNames{"feedback[0].request_id": "--request-id", "feedback[0].labels": "--label", "feedback[0].values": "--value"}
			switch {
			case file != "" && (id != "" || len(labels) > 0 || len(values) > 0):
				return usageErrorf("-f %s holds the feedback: give no --request-id, --label or --value", file)
			case file != "":
				fb, err := readFeedback(file)
				if err != nil {
					return err
				}
				req.Feedback, fieldsOf = fb, nil
			case id == "":
				return usageErrorf("--request-id is required (or -f FILE)")
			case len(labels) == 0 && len(values) == 0:
				return usageErrorf("--label (a classifier) or --value (a regressor) is required, one per row of the request")
			case len(labels) > 0 && len(values) > 0:
				return usageErrorf("give --label or --value, not both")
			default:
				req.Feedback = []*evaluatorv1.Feedback{{RequestId: id, Labels: labels, Values: values}}
			}
			return g.withClient(cmd, func(ctx context.Context, c *client) error {
				ctx, cancel := c.call(ctx)
				defer cancel()
				resp, err := c.monitor().SubmitFeedback(ctx, req)
				if err != nil {
					return fieldsOf.rename(err, a)
				}
				return g.printer(cmd.OutOrStdout()).print(resp, func(t *table) {
					t.row(fmt.Sprintf("feedback recorded for %d rows of %d requests", resp.GetRows(), len(req.GetFeedback())))
				})
			})
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&id, "request-id", "", "the request's id (its X-Request-Id)")
	fl.StringArrayVar(&labels, "label", nil, "the true label of a row (repeat for each row)")
	fl.Float64SliceVar(&values, "value", nil, "the true value of a row (repeat for each row)")
	fl.StringVarP(&file, "file", "f", "", "JSON lines of feedback, one request per line")
	return cmd
}

// readFeedback reads JSON lines of Feedback; errors name the line.
func readFeedback(path string) ([]*evaluatorv1.Feedback, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, usageErrorf("-f: %v", err)
	}
	defer f.Close()
	var out []*evaluatorv1.Feedback
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		fb := &evaluatorv1.Feedback{}
		if err := protojson.Unmarshal([]byte(line), fb); err != nil {
			return nil, usageErrorf("%s:%d: not feedback ({\"request_id\": ..., \"labels\": [...]}): %v", path, n, err)
		}
		out = append(out, fb)
	}
	if err := sc.Err(); err != nil {
		return nil, usageErrorf("-f %s: %v", path, err)
	}
	if len(out) == 0 {
		return nil, usageErrorf("-f %s holds no feedback", path)
	}
	return out, nil
}

// deployMonitorCommand is `bmaas deploy monitor NAME`: the monitoring
// windows of a deployment.
func deployMonitorCommand(g *globals) *cobra.Command {
	var since time.Duration
	cmd := &cobra.Command{
		Use:   "monitor NAME [--since 1h]",
		Short: "Show a deployment's monitoring windows: traffic, errors, latency, drift, data quality, live accuracy",
		Long: "Show what the evaluator computed of a deployment's logged requests (deploy create\n" +
			"--log-payloads), one row per window: requests, error rate, latency p95, the columns that\n" +
			"drifted from the version's training data (with the test chosen as Evidently does: KS or\n" +
			"Wasserstein for numbers, chi-squared or Jensen-Shannon for categories), missing and\n" +
			"out-of-range shares, and live accuracy (or RMSE) from feedback. -o json has every statistic.",
		Example: "  bmaas deploy monitor iris --since 30m",
		Args:    args("NAME", 1),
		RunE: func(cmd *cobra.Command, a []string) error {
			if since <= 0 {
				return usageErrorf("--since must be positive, got %s", since)
			}
			return g.withClient(cmd, func(ctx context.Context, c *client) error {
				ctx, cancel := c.call(ctx)
				defer cancel()
				resp, err := c.monitor().ListMonitorWindows(ctx, &evaluatorv1.ListMonitorWindowsRequest{Deployment: a[0],
					Since: timestamppb.New(time.Now().Add(-since)), PageSize: 1000})
				if err != nil {
					return err
				}
				return g.printer(cmd.OutOrStdout()).print(resp, func(t *table) {
					t.row("WINDOW", "VERSION", "REQUESTS", "ROWS", "ERRORS", "P95", "DRIFTED", "MISSING", "OUT OF RANGE", "LABELLED", "ACCURACY/RMSE", "REPLICAS")
					for _, w := range resp.GetWindows() {
						var drifted []string
						for _, d := range w.GetDrift() {
							if d.GetDrifted() {
								drifted = append(drifted, d.GetColumn())
							}
						}
						p := w.GetPerformance()
						perf := "-"
						switch {
						case p.GetLabelledRows() > 0 && p.GetRmse() > 0:
							perf = formatFloat(p.GetRmse())
						case p.GetLabelledRows() > 0:
							perf = formatFloat(p.GetAccuracy())
						}
						t.row(formatTime(w.GetStartTime()), strconv.FormatInt(w.GetVersion(), 10), strconv.FormatInt(w.GetRequests(), 10),
							strconv.FormatInt(w.GetRows(), 10), strconv.FormatInt(w.GetErrors(), 10),
							(time.Duration(w.GetLatencyP95Seconds() * float64(time.Second))).Round(time.Microsecond).String(),
							orDash(strings.Join(drifted, ",")), formatFloat(w.GetQuality().GetMissingRate()),
							formatFloat(w.GetQuality().GetOutOfRangeRate()), strconv.FormatInt(p.GetLabelledRows(), 10), perf,
							strconv.Itoa(int(w.GetReadyReplicas())))
					}
				})
			})
		},
	}
	cmd.Flags().DurationVar(&since, "since", time.Hour, "the windows of this long ago to now")
	return cmd
}

// datasetFromPayloadsCommand is `bmaas dataset create-from-payloads`.
func datasetFromPayloadsCommand(g *globals) *cobra.Command {
	var deployment string
	var since, until time.Duration
	var unlabelled bool
	cmd := &cobra.Command{
		Use:   "create-from-payloads NAME --deployment NAME [--since 24h] [--until 0s] [--include-unlabelled]",
		Short: "Make a dataset version of a deployment's logged requests joined with their feedback",
		Long: "Add a version to dataset NAME made of what a deployment logged (deploy create --log-payloads)\n" +
			"between --since and --until ago: the version's input columns, one row per input row, and the\n" +
			"target from the feedback given for it (deploy feedback). Rows without feedback are left out\n" +
			"unless --include-unlabelled. Train on it as on any dataset (bmaas train --dataset NAME).",
		Example: "  bmaas dataset create-from-payloads iris-live --deployment iris --since 24h",
		Args:    args("NAME", 1),
		RunE: func(cmd *cobra.Command, a []string) error {
			switch {
			case deployment == "":
				return usageErrorf("--deployment is required: the deployment whose logged requests become rows")
			case since <= 0:
				return usageErrorf("--since must be positive, got %s", since)
			case until < 0 || until >= since:
				return usageErrorf("--until must be within 0 and --since (%s), got %s", since, until)
			}
			now := time.Now()
			req := &evaluatorv1.CreateDatasetFromPayloadsRequest{Deployment: deployment, Dataset: a[0],
				Since: timestamppb.New(now.Add(-since)), Until: timestamppb.New(now.Add(-until)), IncludeUnlabelled: unlabelled}
			return g.withClient(cmd, func(ctx context.Context, c *client) error {
				ctx, cancel := c.call(ctx)
				defer cancel()
				resp, err := c.monitor().CreateDatasetFromPayloads(ctx, req)
				if err != nil {
					return fieldNames{"dataset": "NAME", "deployment": "--deployment", "since": "--since"}.rename(err, a)
				}
				return g.printer(cmd.OutOrStdout()).print(resp, func(t *table) {
					t.row(fmt.Sprintf("dataset %s version %d: %d rows (%d with feedback) of %d logged requests",
						resp.GetDataset(), resp.GetVersion(), resp.GetRows(), resp.GetLabelledRows(), resp.GetRequests()))
				})
			})
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&deployment, "deployment", "", "the deployment whose logged requests are read")
	fl.DurationVar(&since, "since", 24*time.Hour, "from this long ago")
	fl.DurationVar(&until, "until", 0, "to this long ago")
	fl.BoolVar(&unlabelled, "include-unlabelled", false, "keep rows without feedback, with an empty target")
	return cmd
}

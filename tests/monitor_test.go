//go:build integration

package tests

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	evaluatorv1 "github.com/bmaas/bmaas/api/bmaas/evaluator/v1"
	gatewayv1 "github.com/bmaas/bmaas/api/bmaas/gateway/v1"
	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
	schedulerv1 "github.com/bmaas/bmaas/api/bmaas/scheduler/v1"
	"github.com/bmaas/bmaas/internal/app"
	"github.com/bmaas/bmaas/tests/harness"
)

// withFastMonitor makes the monitor's windows and the alert rules run in
// test time.
func withFastMonitor(window time.Duration) harness.Option {
	return func(cfg *app.Config) {
		cfg.Evaluator.MonitorWindow = window
		cfg.Evaluator.MonitorMinRows = 20
		cfg.Evaluator.AlertInterval = 200 * time.Millisecond
		cfg.Evaluator.AlertResend = time.Second
	}
}

// irisRows reads iris.csv's rows (features as numbers, target as label).
func irisRows(t *testing.T) ([][]float64, []string) {
	t.Helper()
	var xs [][]float64
	var ys []string
	for _, r := range readExampleCSV(t, "iris.csv")[1:] {
		row := make([]float64, 4)
		for j := range row {
			v, err := strconv.ParseFloat(r[j], 64)
			require.NoError(t, err)
			row[j] = v
		}
		xs, ys = append(xs, row), append(ys, r[4])
	}
	return xs, ys
}

// inferRows sends rows to deployment over v2 REST with a request id and
// returns the status and the predicted labels.
func inferRows(t *testing.T, c *harness.Cluster, deployment, id string, rows [][]float64) (int, []string) {
	t.Helper()
	var data []float64
	for _, r := range rows {
		data = append(data, r...)
	}
	body, err := json.Marshal(map[string]any{"inputs": []map[string]any{{"name": "input", "datatype": "FP64",
		"shape": []int{len(rows), len(rows[0])}, "data": data}}})
	require.NoError(t, err)
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, c.HTTP+"/v2/models/"+deployment+"/infer", bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Request-Id", id)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil
	}
	defer resp.Body.Close()
	var out struct {
		Outputs []struct {
			Name string `json:"name"`
			Data []any  `json:"data"`
		} `json:"outputs"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&out)
	var labels []string
	for _, o := range out.Outputs {
		if o.Name == "predictions" {
			for _, d := range o.Data {
				labels = append(labels, fmt.Sprint(d))
			}
		}
	}
	return resp.StatusCode, labels
}

// deployLogged trains model on dataset and deploys model@ref with every
// payload logged, waiting until it is ready.
func deployLogged(t *testing.T, c *harness.Cluster, name, ref string) {
	t.Helper()
	dc := gatewayv1.NewDeploymentServiceClient(c.Conn)
	_, err := dc.CreateDeployment(t.Context(), &gatewayv1.CreateDeploymentRequest{Deployment: &gatewayv1.Deployment{
		Name: name, Model: ref, MinReplicas: 1, MaxReplicas: 1, PayloadLogging: &gatewayv1.PayloadLogging{SampleRate: 1}}})
	require.NoError(t, err)
	eventually(t, time.Minute, "deployment ready", func() bool {
		code, _ := httpDo(t, c, "GET", "/v2/models/"+name+"/ready", nil)
		return code == http.StatusOK
	})
}

// TestFeedbackJoinsLateInTheWindowOfItsPrediction: ground truth given
// after the window of its predictions has moved on (and been sealed)
// still counts in that window; bad feedback names its field and records
// nothing.
func TestFeedbackJoinsLateInTheWindowOfItsPrediction(t *testing.T) {
	t.Parallel()
	c := harness.Start(t, withFastGateway(), withFastMonitor(time.Second))
	ctx := t.Context()
	uploadDatasetFile(t, c.Registry, "iris", "iris.csv")
	_, err := c.Registry.CreateModel(ctx, &registryv1.CreateModelRequest{Model: &registryv1.Model{Name: "iris"}})
	require.NoError(t, err)
	trainVersion(t, c, "iris", "iris", "logistic")
	deployLogged(t, c, "iris", "iris@latest")
	mc := evaluatorv1.NewMonitorServiceClient(c.Conn)
	xs, ys := irisRows(t)

	// Ten requests of three rows each, within a second.
	sent := time.Now()
	var preds [][]string
	for i := range 10 {
		code, p := inferRows(t, c, "iris", fmt.Sprintf("late-%d", i), xs[i*15:i*15+3])
		require.Equal(t, http.StatusOK, code)
		require.Len(t, p, 3)
		preds = append(preds, p)
	}
	// The feedback comes once the window is over and sealed.
	eventually(t, 30*time.Second, "windows of the requests stored", func() bool {
		resp, err := mc.ListMonitorWindows(ctx, &evaluatorv1.ListMonitorWindowsRequest{Deployment: "iris", Since: timestamppb.New(sent.Add(-2 * time.Second))})
		require.NoError(t, err)
		var n int64
		for _, w := range resp.Windows {
			n += w.Rows
		}
		return n == 30
	})
	for time.Since(sent) < 3500*time.Millisecond {
		time.Sleep(100 * time.Millisecond) // let the windows close: lateness is the point
	}

	_, err = mc.SubmitFeedback(ctx, &evaluatorv1.SubmitFeedbackRequest{Deployment: "iris", Feedback: []*evaluatorv1.Feedback{
		{RequestId: "late-0", Labels: []string{ys[0], ys[1], ys[2]}}, {RequestId: "never-sent", Labels: []string{"0"}}}})
	requireField(t, err, codes.NotFound, "feedback[1].request_id")
	_, err = mc.SubmitFeedback(ctx, &evaluatorv1.SubmitFeedbackRequest{Deployment: "iris", Feedback: []*evaluatorv1.Feedback{
		{RequestId: "late-0", Labels: []string{ys[0]}}}})
	requireField(t, err, codes.InvalidArgument, "feedback[0].labels")

	// Every other request gets its true labels, the rest the wrong ones
	// (the predictions shifted by one class).
	var fb []*evaluatorv1.Feedback
	wantRight := 0
	for i := range 10 {
		labels := make([]string, 3)
		for r := range 3 {
			if i%2 == 0 {
				labels[r] = preds[i][r]
				wantRight++
			} else {
				n, _ := strconv.Atoi(preds[i][r])
				labels[r] = strconv.Itoa((n + 1) % 3)
			}
		}
		fb = append(fb, &evaluatorv1.Feedback{RequestId: fmt.Sprintf("late-%d", i), Labels: labels})
	}
	resp, err := mc.SubmitFeedback(ctx, &evaluatorv1.SubmitFeedbackRequest{Deployment: "iris", Feedback: fb})
	require.NoError(t, err)
	require.EqualValues(t, 30, resp.Rows)
	_, err = mc.SubmitFeedback(ctx, &evaluatorv1.SubmitFeedbackRequest{Deployment: "iris", Feedback: fb[:1]})
	requireField(t, err, codes.AlreadyExists, "feedback[0].request_id")

	eventually(t, 30*time.Second, "late feedback counted in the prediction's windows", func() bool {
		resp, err := mc.ListMonitorWindows(ctx, &evaluatorv1.ListMonitorWindowsRequest{Deployment: "iris", Since: timestamppb.New(sent.Add(-2 * time.Second))})
		require.NoError(t, err)
		var labelled int64
		var right float64
		for _, w := range resp.Windows {
			if w.StartTime.AsTime().After(sent.Add(2 * time.Second)) {
				require.Zero(t, w.GetPerformance().GetLabelledRows(), "feedback counted in a later window")
			}
			labelled += w.GetPerformance().GetLabelledRows()
			right += w.GetPerformance().GetAccuracy() * float64(w.GetPerformance().GetLabelledRows())
		}
		return labelled == 30 && int(right+0.5) == wantRight
	})
	// The CLI reads the windows and refuses bad feedback naming the flag.
	out, err := runCLI(t, c, "deploy", "monitor", "iris", "--since", "5m")
	require.NoError(t, err)
	require.Contains(t, out, "ACCURACY/RMSE")
	_, err = runCLI(t, c, "deploy", "feedback", "iris", "--request-id", "late-0", "--label", "1")
	require.ErrorContains(t, err, "--request-id: ")
	fbFile := filepath.Join(t.TempDir(), "fb.jsonl")
	require.NoError(t, os.WriteFile(fbFile, []byte(`{"request_id": "late-extra", "labels": ["0"]}`+"\n"), 0o600))
	_, err = runCLI(t, c, "-o", "json", "deploy", "feedback", "iris", "-f", fbFile)
	require.ErrorContains(t, err, "feedback[0].request_id: ")
	_, err = runCLI(t, c, "deploy", "feedback", "iris", "--request-id", "nope", "--label", "1")
	require.ErrorContains(t, err, "--request-id: ")

	// The logged rows with their feedback become a dataset version.
	_, err = runCLI(t, c, "dataset", "create-from-payloads", "iris-live", "--deployment", "nope", "--since", "5m")
	require.ErrorContains(t, err, "no request with feedback")
	out, err = runCLI(t, c, "dataset", "create-from-payloads", "iris-live", "--deployment", "iris", "--since", "5m")
	require.NoError(t, err)
	require.Contains(t, out, "30 rows (30 with feedback) of 10 logged requests")
	out, err = runCLI(t, c, "-o", "json", "dataset", "create-from-payloads", "iris-live", "--deployment", "iris", "--since", "5m")
	require.NoError(t, err)
	var made map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &made), "%s", out)
	require.Equal(t, "2", made["version"])
	csvFile := filepath.Join(t.TempDir(), "live.csv")
	_, err = runCLI(t, c, "dataset", "download", "iris-live", "-o", csvFile)
	require.NoError(t, err)
	data, err := os.ReadFile(csvFile)
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	require.Equal(t, "sepal_length_cm,sepal_width_cm,petal_length_cm,petal_width_cm,target", lines[0])
	require.Len(t, lines, 31)
	first := strings.Split(lines[1], ",")
	require.Equal(t, fb[0].Labels[0], first[4])
	x0, err := strconv.ParseFloat(first[0], 64)
	require.NoError(t, err)
	require.Equal(t, xs[0][0], x0)

	// A rule that fires at once retrains on a dataset made of the logged
	// requests that got feedback.
	_, err = runCLI(t, c, "alert", "rule", "create", "busy", "--deployment", "iris", "--when", "requests >= 1",
		"--retrain", "--retrain-from-payloads", "10m")
	require.NoError(t, err)
	for i := range 3 {
		code, _ := inferRows(t, c, "iris", fmt.Sprintf("busy-%d", i), xs[:1])
		require.Equal(t, http.StatusOK, code)
	}
	var fired *evaluatorv1.Alert
	eventually(t, 30*time.Second, "the busy rule fires and retrains", func() bool {
		resp, err := mc.ListAlerts(ctx, &evaluatorv1.ListAlertsRequest{Rule: "busy"})
		require.NoError(t, err)
		if len(resp.Alerts) == 0 || !hasKind(resp.Alerts[0], "job") {
			return false
		}
		fired = resp.Alerts[0]
		return true
	})
	for _, l := range fired.Links {
		if l.Kind == "dataset" {
			require.Regexp(t, `^iris-feedback@1$`, l.Ref)
			require.Contains(t, l.Message, "30 rows with feedback")
		}
	}
	require.True(t, hasKind(fired, "dataset"), "%v", fired.Links)
	out, err = runCLI(t, c, "-o", "json", "deploy", "feedback", "iris", "--request-id", "busy-0", "--label", ys[0])
	require.NoError(t, err)
	var given map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &given), "%s", out)
	require.Equal(t, "1", given["rows"])

	// Over REST too, in the window of the prediction.
	code, body := httpDo(t, c, "GET", "/v1/deployments/iris/monitoring?since="+sent.Add(-2*time.Second).UTC().Format(time.RFC3339Nano), nil)
	require.Equal(t, http.StatusOK, code, "%s", body)
	require.Contains(t, string(body), `"labelled_rows"`)
}

// alertmanager is a real Alertmanager (Debian's prometheus-alertmanager)
// whose one receiver is a webhook the test serves: what Alertmanager
// routes out arrives on got.
type alertmanager struct {
	url string
	got chan []byte
}

func startAlertmanager(t *testing.T) *alertmanager {
	t.Helper()
	bin, err := exec.LookPath("prometheus-alertmanager")
	if err != nil {
		bin, err = exec.LookPath("alertmanager")
	}
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("prometheus-alertmanager not found; .ci/run installs it")
		}
		t.Skip("prometheus-alertmanager not found (apt-get install prometheus-alertmanager)")
	}
	am := &alertmanager{got: make(chan []byte, 64)}
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		select {
		case am.got <- b:
		default:
		}
	}))
	t.Cleanup(hook.Close)
	dir := t.TempDir()
	cfg := fmt.Sprintf(`route:
  receiver: test
  group_by: [alertname]
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: test
    webhook_configs:
      - url: %s/hook
        send_resolved: true
`, hook.URL)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "am.yml"), []byte(cfg), 0o600))
	port := freePort(t)
	cmd := exec.Command(bin, "--config.file="+filepath.Join(dir, "am.yml"), "--storage.path="+filepath.Join(dir, "data"),
		"--web.listen-address=127.0.0.1:"+port, "--cluster.listen-address=")
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("alertmanager:\n%s", logs.String())
		}
	})
	am.url = "http://127.0.0.1:" + port
	eventually(t, 30*time.Second, "alertmanager ready", func() bool {
		resp, err := http.Get(am.url + "/-/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return am
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
}

// shifted is iris with sepal width and petal length moved far from what
// the first version was trained on.
func shifted(xs [][]float64) [][]float64 {
	out := make([][]float64, len(xs))
	for i, r := range xs {
		out[i] = []float64{r[0], r[1] + 2, r[2] + 4, r[3]}
	}
	return out
}

// TestDriftAlertRetrainsPromotesAndResolves is the monitoring loop end to
// end: a deployment that logs its payloads gets traffic from its training
// distribution, then with two columns shifted; the drift rises on those
// two columns and not the others; a drift rule fires, a real Alertmanager
// gets the alert, the retrain action trains on a dataset of the shifted
// distribution, the new version is evaluated and promoted by the policy,
// the deployment rolls to it with no failed request, and the alert
// resolves; the chain is in the alert.
func TestDriftAlertRetrainsPromotesAndResolves(t *testing.T) {
	t.Parallel()
	am := startAlertmanager(t)
	c := harness.Start(t, withFastGateway(), withFastMonitor(2*time.Second), func(cfg *app.Config) {
		cfg.Evaluator.Alertmanagers = am.url
	})
	ctx := t.Context()
	mc := evaluatorv1.NewMonitorServiceClient(c.Conn)
	xs, _ := irisRows(t)
	v1 := irisWithShiftPolicy(t, c)
	deployLogged(t, c, "iris", "iris@production")

	// Bad rules name their field and store nothing.
	rule := &evaluatorv1.AlertRule{Name: "iris-drift", Deployment: "iris", Series: "drifted_columns",
		Comparison: evaluatorv1.Comparison_COMPARISON_GREATER_OR_EQUAL, Threshold: 1, For: durationpb.New(time.Second),
		Labels: map[string]string{"team": "ml"}, Action: &evaluatorv1.AlertAction{Kind: "retrain", Dataset: "irisshift"}}
	for field, bad := range map[string]func(r *evaluatorv1.AlertRule){
		"rule.series":     func(r *evaluatorv1.AlertRule) { r.Series = "drift_scroe" },
		"rule.for":        func(r *evaluatorv1.AlertRule) { r.For = durationpb.New(-time.Second) },
		"rule.deployment": func(r *evaluatorv1.AlertRule) { r.Deployment = "nope" },
		"rule.action.kind": func(r *evaluatorv1.AlertRule) {
			r.Action = &evaluatorv1.AlertAction{Kind: "reboot"}
		},
	} {
		r := proto.Clone(rule).(*evaluatorv1.AlertRule)
		bad(r)
		_, err := mc.CreateAlertRule(ctx, &evaluatorv1.CreateAlertRuleRequest{Rule: r})
		requireField(t, err, codes.InvalidArgument, field)
	}
	list, err := mc.ListAlertRules(ctx, &evaluatorv1.ListAlertRulesRequest{})
	require.NoError(t, err)
	require.Empty(t, list.Rules)

	// Traffic from the training distribution, all the way through.
	var failed, sent atomic.Int64
	var shift atomic.Bool
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		// Every row once, in a shuffled order, then again: each window's
		// rows are close to the whole table's distribution, so a column
		// that did not move does not read as drift by chance.
		order := rand.New(rand.NewPCG(7, 11)).Perm(len(xs))
		next := 0
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(40 * time.Millisecond):
			}
			rows := xs
			if shift.Load() {
				rows = shifted(xs)
			}
			pick := make([][]float64, 5)
			for j := range pick {
				pick[j] = rows[order[next%len(order)]]
				next++
			}
			code, _ := inferRows(t, c, "iris", fmt.Sprintf("e2e-%d", i), pick)
			sent.Add(1)
			if code != http.StatusOK {
				failed.Add(1)
			}
		}
	}()
	t.Cleanup(func() { close(stop); <-done })

	windows := func(since time.Time) []*evaluatorv1.MonitorWindow {
		resp, err := mc.ListMonitorWindows(ctx, &evaluatorv1.ListMonitorWindowsRequest{Deployment: "iris", Since: timestamppb.New(since)})
		require.NoError(t, err)
		return resp.Windows
	}
	start := time.Now()
	var calm *evaluatorv1.MonitorWindow
	eventually(t, 30*time.Second, "a full window of training-like traffic", func() bool {
		for _, w := range windows(start) {
			if w.StartTime.AsTime().After(start) && w.EndTime.AsTime().Before(time.Now().Add(-time.Second)) && w.Rows >= 40 {
				calm = w
				return true
			}
		}
		return false
	})
	require.Len(t, calm.Drift, 4)
	for _, d := range calm.Drift {
		require.False(t, d.Drifted, "column %s drifted on training-like traffic: %+v", d.Column, d)
	}

	// Then shifted traffic: sepal width and petal length drift, the other
	// two columns do not.
	shift.Store(true)
	shiftedAt := time.Now()
	var hot *evaluatorv1.MonitorWindow
	eventually(t, 30*time.Second, "a window of shifted traffic on version 1", func() bool {
		for _, w := range windows(shiftedAt) {
			if w.StartTime.AsTime().After(shiftedAt) && w.EndTime.AsTime().Before(time.Now().Add(-time.Second)) && w.Version == v1 && w.Rows >= 40 {
				hot = w
				return true
			}
		}
		return false
	})
	drifted := map[string]bool{}
	for _, d := range hot.Drift {
		drifted[d.Column] = d.Drifted
	}
	require.Equal(t, map[string]bool{"sepal_length_cm": false, "sepal_width_cm": true, "petal_length_cm": true, "petal_width_cm": false}, drifted, "%v", hot)
	// The latest window is exported as gauges.
	eventually(t, 10*time.Second, "the drift gauges exported", func() bool {
		_, body := httpDo(t, c, "GET", "/metrics", nil)
		return strings.Contains(string(body), `bmaas_monitor_drift_share{deployment="iris"}`) &&
			strings.Contains(string(body), `bmaas_monitor_drift_score{column="petal_length_cm",deployment="iris",test="ks"}`)
	})

	_, err = mc.CreateAlertRule(ctx, &evaluatorv1.CreateAlertRuleRequest{Rule: rule})
	require.NoError(t, err)
	out, err := runCLI(t, c, "alert", "rule", "get", "iris-drift")
	require.NoError(t, err)
	require.Contains(t, out, "drifted_columns >= 1")

	var alert *evaluatorv1.Alert
	eventually(t, 30*time.Second, "the rule fires", func() bool {
		r, err := mc.GetAlertRule(ctx, &evaluatorv1.GetAlertRuleRequest{Name: "iris-drift"})
		require.NoError(t, err)
		if r.Rule.State != evaluatorv1.AlertState_ALERT_STATE_FIRING {
			return false
		}
		a, err := mc.GetAlert(ctx, &evaluatorv1.GetAlertRequest{Id: r.Rule.Alert})
		require.NoError(t, err)
		alert = a.Alert
		return true
	})
	require.Equal(t, "ml", alert.Labels["team"])
	// Alertmanager routed it to its receiver.
	select {
	case b := <-am.got:
		require.Contains(t, string(b), `"alertname":"iris-drift"`)
		require.Contains(t, string(b), `"status":"firing"`)
	case <-time.After(30 * time.Second):
		t.Fatal("alertmanager sent nothing to its receiver")
	}

	// The retraining, its version, evaluation, decision and rollout.
	eventually(t, 2*time.Minute, "the chain of actions completes", func() bool {
		a, err := mc.GetAlert(ctx, &evaluatorv1.GetAlertRequest{Id: alert.Id})
		require.NoError(t, err)
		alert = a.Alert
		return hasKind(alert, "done")
	})
	for _, k := range []string{"job", "version", "evaluation", "decision", "rollout", "notification"} {
		require.True(t, hasKind(alert, k), "no %s link in %v", k, alert.Links)
	}
	v2, err := c.Registry.GetModelVersion(ctx, &registryv1.GetModelVersionRequest{Model: "iris", Version: "production"})
	require.NoError(t, err)
	require.Greater(t, v2.Version.Version, v1)
	require.Equal(t, "irisshift", v2.Version.Lineage.Dataset)

	// On the new version the shifted traffic is no drift: the alert
	// resolves, and Alertmanager says so.
	eventually(t, time.Minute, "the alert resolves", func() bool {
		a, err := mc.GetAlert(ctx, &evaluatorv1.GetAlertRequest{Id: alert.Id})
		require.NoError(t, err)
		alert = a.Alert
		return alert.State == evaluatorv1.AlertState_ALERT_STATE_RESOLVED
	})
	eventually(t, 30*time.Second, "alertmanager sends the resolution", func() bool {
		select {
		case b := <-am.got:
			return strings.Contains(string(b), `"status":"resolved"`)
		default:
			return false
		}
	})
	require.Zero(t, failed.Load(), "failed requests of %d", sent.Load())
	out, err = runCLI(t, c, "alert", "get", alert.Id)
	require.NoError(t, err)
	for _, want := range []string{"RESOLVED", "job", "decision", "rollout"} {
		require.Contains(t, out, want)
	}
	out, err = runCLI(t, c, "alert", "list")
	require.NoError(t, err)
	require.Contains(t, out, alert.Id)
	out, err = runCLI(t, c, "-o", "json", "alert", "get", alert.Id)
	require.NoError(t, err)
	var doc map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &doc), "%s", out)
	require.Equal(t, alert.Id, doc["id"])
}

// irisWithShiftPolicy uploads iris and its shifted copy (irisshift),
// gives model iris a policy that promotes to production the version with
// the best accuracy on irisshift, and trains version 1 on iris, waiting
// until it holds production; it returns that version.
func irisWithShiftPolicy(t *testing.T, c *harness.Cluster) int64 {
	t.Helper()
	ctx := t.Context()
	ec := evaluatorv1.NewEvaluatorServiceClient(c.Conn)
	xs, ys := irisRows(t)
	header := readExampleCSV(t, "iris.csv")[0]
	shiftedCSV := [][]string{header}
	for i, r := range shifted(xs) {
		row := make([]string, 0, 5)
		for _, v := range r {
			row = append(row, strconv.FormatFloat(v, 'f', -1, 64))
		}
		shiftedCSV = append(shiftedCSV, append(row, ys[i]))
	}
	uploadDatasetFile(t, c.Registry, "iris", "iris.csv")
	uploadCSV(t, c.Registry, "irisshift", shiftedCSV)
	_, err := c.Registry.CreateModel(ctx, &registryv1.CreateModelRequest{Model: &registryv1.Model{Name: "iris"}})
	require.NoError(t, err)
	_, err = ec.SetEvaluationPolicy(ctx, &evaluatorv1.SetEvaluationPolicyRequest{Policy: &evaluatorv1.EvaluationPolicy{
		Model: "iris", Datasets: []*evaluatorv1.DatasetRef{{Dataset: "irisshift"}},
		Promotion: &evaluatorv1.PromotionPolicy{TargetAlias: "production", PrimaryMetric: "eval_irisshift_accuracy",
			Direction: evaluatorv1.Direction_DIRECTION_MAXIMIZE, MinImprovement: 0.05, Enabled: true}}})
	require.NoError(t, err)
	v1 := trainVersion(t, c, "iris", "iris", "logistic")
	eventually(t, 30*time.Second, "version 1 promoted", func() bool {
		v, err := c.Registry.GetModelVersion(ctx, &registryv1.GetModelVersionRequest{Model: "iris", Version: "production"})
		return err == nil && v.Version.Version == v1
	})
	return v1
}

func hasKind(a *evaluatorv1.Alert, kind string) bool {
	for _, l := range a.Links {
		if l.Kind == kind {
			return true
		}
	}
	return false
}

// TestNodeUsageRecorded: the leader records each node's capacity and
// allocation over time, read oldest first in pages over gRPC and REST.
func TestNodeUsageRecorded(t *testing.T) {
	t.Parallel()
	c := harness.Start(t, func(cfg *app.Config) { cfg.Evaluator.NodeUsageInterval = 100 * time.Millisecond })
	ctx := t.Context()
	mc := evaluatorv1.NewMonitorServiceClient(c.Conn)
	start := time.Now()
	var all []*evaluatorv1.NodeUsage
	eventually(t, 30*time.Second, "five samples of the node", func() bool {
		resp, err := mc.ListNodeUsage(ctx, &evaluatorv1.ListNodeUsageRequest{Since: timestamppb.New(start)})
		require.NoError(t, err)
		all = resp.Samples
		return len(all) >= 5
	})
	node := all[0].Node
	require.Positive(t, all[0].CpuMillis)
	require.Positive(t, all[0].MemoryBytes)
	for i := 1; i < len(all); i++ {
		require.False(t, all[i].Time.AsTime().Before(all[i-1].Time.AsTime()), "oldest first")
	}
	page, err := mc.ListNodeUsage(ctx, &evaluatorv1.ListNodeUsageRequest{Node: node, Since: timestamppb.New(start), PageSize: 2})
	require.NoError(t, err)
	require.Len(t, page.Samples, 2)
	require.NotEmpty(t, page.NextPageToken)
	next, err := mc.ListNodeUsage(ctx, &evaluatorv1.ListNodeUsageRequest{Node: node, PageSize: 2, PageToken: page.NextPageToken})
	require.NoError(t, err)
	require.Equal(t, all[2].Time.AsTime(), next.Samples[0].Time.AsTime())
	none, err := mc.ListNodeUsage(ctx, &evaluatorv1.ListNodeUsageRequest{Node: "no-such-node"})
	require.NoError(t, err)
	require.Empty(t, none.Samples)
	_, err = mc.ListNodeUsage(ctx, &evaluatorv1.ListNodeUsageRequest{PageSize: 5000})
	requireField(t, err, codes.InvalidArgument, "page_size")
	code, body := httpDo(t, c, "GET", "/v1/node-usage?node="+node+"&page_size=1", nil)
	require.Equal(t, http.StatusOK, code, "%s", body)
	require.Contains(t, string(body), `"cpu_millis":"`)
	require.Contains(t, string(body), `"next_page_token"`)
}

// TestRetrainRuleNeedsATrainingJob: a retrain rule on a deployment whose
// version was uploaded, not trained here, is refused naming the action
// (the flag on the CLI), and nothing is stored.
func TestRetrainRuleNeedsATrainingJob(t *testing.T) {
	t.Parallel()
	c := harness.Start(t)
	ctx := t.Context()
	data, err := os.ReadFile(filepath.Join("..", "examples", "models", "logreg-v1.onnx"))
	require.NoError(t, err)
	_, err = c.Registry.CreateModel(ctx, &registryv1.CreateModelRequest{Model: &registryv1.Model{Name: "uploaded"}})
	require.NoError(t, err)
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, c.HTTP+"/v1/models/uploaded/artifact?filename=model.onnx", bytes.NewReader(data))
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	require.Less(t, resp.StatusCode, 300)
	dc := gatewayv1.NewDeploymentServiceClient(c.Conn)
	_, err = dc.CreateDeployment(ctx, &gatewayv1.CreateDeploymentRequest{Deployment: &gatewayv1.Deployment{
		Name: "uploaded", Model: "uploaded@latest", MinReplicas: 0, MaxReplicas: 1}})
	require.NoError(t, err)
	mc := evaluatorv1.NewMonitorServiceClient(c.Conn)
	_, err = mc.CreateAlertRule(ctx, &evaluatorv1.CreateAlertRuleRequest{Rule: &evaluatorv1.AlertRule{Name: "u", Deployment: "uploaded",
		Series: "drift_share", Comparison: evaluatorv1.Comparison_COMPARISON_GREATER, Threshold: 0.5,
		Action: &evaluatorv1.AlertAction{Kind: "retrain"}}})
	requireField(t, err, codes.InvalidArgument, "rule.action")
	require.Contains(t, err.Error(), "no training job")
	_, err = runCLI(t, c, "alert", "rule", "create", "u", "--deployment", "uploaded", "--when", "drift_share > 0.5", "--retrain")
	require.ErrorContains(t, err, "--retrain: ")
	_, err = runCLI(t, c, "alert", "rule", "create", "u", "--deployment", "uploaded", "--when", "drift_share > 0.5", "--for", "-1s")
	require.ErrorContains(t, err, "--for must not be negative")
	out, err := runCLI(t, c, "alert", "rule", "list")
	require.NoError(t, err)
	require.NotContains(t, out, "uploaded")
	// Without the action the rule is fine; an update changes what its mask
	// names and refuses what a create would.
	_, err = runCLI(t, c, "alert", "rule", "create", "u", "--deployment", "uploaded", "--when", "drift_share > 0.5",
		"--label", "team=ml")
	require.NoError(t, err)
	out, err = runCLI(t, c, "alert", "rule", "update", "u", "--when", "drift_score{petal_length} >= 0.3", "--for", "2m")
	require.NoError(t, err)
	require.Contains(t, out, "drift_score{petal_length} >= 0.3")
	got, err := mc.GetAlertRule(ctx, &evaluatorv1.GetAlertRuleRequest{Name: "u"})
	require.NoError(t, err)
	require.Equal(t, 2*time.Minute, got.Rule.For.AsDuration())
	require.Equal(t, map[string]string{"team": "ml"}, got.Rule.Labels, "what the mask does not name is kept")
	_, err = runCLI(t, c, "alert", "rule", "update", "u", "--when", "drift_scroe > 1")
	require.ErrorContains(t, err, "--when: ")
	_, err = runCLI(t, c, "alert", "rule", "update", "u", "--retrain-dataset", "x")
	require.ErrorContains(t, err, "has no action")
	_, err = mc.UpdateAlertRule(ctx, &evaluatorv1.UpdateAlertRuleRequest{Rule: &evaluatorv1.AlertRule{Name: "u",
		Action: &evaluatorv1.AlertAction{Kind: "retrain"}}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"action"}}})
	requireField(t, err, codes.InvalidArgument, "rule.action")
	_, err = mc.UpdateAlertRule(ctx, &evaluatorv1.UpdateAlertRuleRequest{Rule: &evaluatorv1.AlertRule{Name: "u"},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"state_kind"}}})
	requireField(t, err, codes.InvalidArgument, "update_mask")
	_, err = mc.UpdateAlertRule(ctx, &evaluatorv1.UpdateAlertRuleRequest{Rule: &evaluatorv1.AlertRule{Name: "nope"}})
	require.Equal(t, codes.NotFound, status.Code(err))
	_, err = runCLI(t, c, "alert", "rule", "create", "u", "--deployment", "uploaded", "--when", "drift_share > 0.5")
	require.ErrorContains(t, err, "already exists")
	_, err = runCLI(t, c, "alert", "rule", "delete", "u")
	require.NoError(t, err)
}

// TestPlatformRuleOnJobFailures: a rule over a platform series (no
// deployment) fires when a job fails and resolves once the failure is
// older than the window.
func TestPlatformRuleOnJobFailures(t *testing.T) {
	t.Parallel()
	c := harness.Start(t, withFastMonitor(2*time.Second))
	ctx := t.Context()
	mc := evaluatorv1.NewMonitorServiceClient(c.Conn)
	_, err := runCLI(t, c, "alert", "rule", "create", "jobs-failing", "--deployment", "x", "--when", "job_failures >= 1")
	require.ErrorContains(t, err, "--deployment: ")
	_, err = runCLI(t, c, "alert", "rule", "create", "jobs-failing", "--when", "job_failures >= 1", "--label", "severity=page")
	require.NoError(t, err)
	sc := schedulerv1.NewSchedulerServiceClient(c.Conn)
	_, err = c.Registry.CreateModel(ctx, &registryv1.CreateModelRequest{Model: &registryv1.Model{Name: "failing"}})
	require.NoError(t, err)
	sub, err := sc.SubmitJob(ctx, &schedulerv1.SubmitJobRequest{Spec: &schedulerv1.JobSpec{Model: "failing",
		Runtime: &schedulerv1.JobSpec_Process{Process: &schedulerv1.ProcessRuntime{Command: "/bin/sh", Args: []string{"-c", "exit 3"}}}}})
	require.NoError(t, err)
	job := waitJob(t, sc, sub.Job.Id, time.Minute)
	require.Equal(t, schedulerv1.JobState_JOB_STATE_FAILED, job.State)
	var alert *evaluatorv1.Alert
	eventually(t, 20*time.Second, "the rule fires", func() bool {
		resp, err := mc.ListAlerts(ctx, &evaluatorv1.ListAlertsRequest{Rule: "jobs-failing"})
		require.NoError(t, err)
		if len(resp.Alerts) == 0 || resp.Alerts[0].FiringTime == nil {
			return false
		}
		alert = resp.Alerts[0]
		return true
	})
	require.Equal(t, "page", alert.Labels["severity"])
	require.NotContains(t, alert.Labels, "deployment")
	eventually(t, 20*time.Second, "the rule resolves", func() bool {
		a, err := mc.GetAlert(ctx, &evaluatorv1.GetAlertRequest{Id: alert.Id})
		require.NoError(t, err)
		return a.Alert.State == evaluatorv1.AlertState_ALERT_STATE_RESOLVED
	})
}

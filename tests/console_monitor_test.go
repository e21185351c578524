//go:build integration

package tests

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	evaluatorv1 "github.com/bmaas/bmaas/api/bmaas/evaluator/v1"
	gatewayv1 "github.com/bmaas/bmaas/api/bmaas/gateway/v1"
	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
	schedulerv1 "github.com/bmaas/bmaas/api/bmaas/scheduler/v1"
	"github.com/bmaas/bmaas/tests/harness"
)

// series is a chart's data as label → x → y.
type series = map[string]map[float64]float64

// at is a timestamp as the console's x axis has it: seconds, to the
// millisecond.
func at(ts interface{ AsTime() time.Time }) float64 {
	return float64(ts.AsTime().UnixMilli()) / 1000
}

// monitorCharts is what each chart of a deployment page should hold for
// the windows, as the page's monitor.js builds it.
func monitorCharts(ws []*evaluatorv1.MonitorWindow) map[string]series {
	put := func(s series, label string, x, y float64) {
		if s[label] == nil {
			s[label] = map[float64]float64{}
		}
		s[label][x] = y
	}
	out := map[string]series{}
	for _, k := range []string{"traffic", "latency", "replicas", "drift", "quality", "performance"} {
		out[k] = series{}
	}
	for _, w := range ws {
		x := at(w.StartTime)
		put(out["traffic"], "requests", x, float64(w.Requests))
		put(out["traffic"], "errors", x, float64(w.Errors))
		put(out["latency"], "p50", x, w.LatencyP50Seconds)
		put(out["latency"], "p95", x, w.LatencyP95Seconds)
		put(out["latency"], "p99", x, w.LatencyP99Seconds)
		put(out["replicas"], "ready replicas", x, float64(w.ReadyReplicas))
		put(out["quality"], "missing_rate", x, w.GetQuality().GetMissingRate())
		put(out["quality"], "out_of_range_rate", x, w.GetQuality().GetOutOfRangeRate())
		put(out["quality"], "unseen_category_rate", x, w.GetQuality().GetUnseenCategoryRate())
		worst := math.Inf(-1)
		for _, d := range w.Drift {
			put(out["drift"], d.Column, x, d.Score)
			if d.Drifted {
				worst = math.Max(worst, d.Score)
			}
		}
		if !math.IsInf(worst, -1) {
			put(out["drift"], "drifted", x, worst)
		}
		if perf := w.GetPerformance(); perf.GetLabelledRows() > 0 {
			put(out["performance"], "accuracy", x, perf.Accuracy)
			put(out["performance"], "f1", x, perf.F1)
			put(out["performance"], "auc", x, perf.Auc)
		}
	}
	return out
}

// alertMarks are the marks of the alerts' moves, as "x label".
func alertMarks(alerts []*evaluatorv1.Alert) []string {
	var out []string
	for _, a := range alerts {
		for _, m := range []struct {
			ts   interface{ AsTime() time.Time }
			word string
			ok   bool
		}{{a.PendingTime, "pending", a.PendingTime != nil}, {a.FiringTime, "firing", a.FiringTime != nil}, {a.ResolvedTime, "resolved", a.ResolvedTime != nil}} {
			if m.ok {
				out = append(out, strconv.FormatFloat(at(m.ts), 'f', 3, 64)+" "+a.Rule+" "+m.word)
			}
		}
	}
	sort.Strings(out)
	return out
}

// waitLive waits until the page's events stream is open.
func (p *console) waitLive() {
	p.t.Helper()
	eventually(p.t, 30*time.Second, "the console's events stream open", func() bool {
		return p.eval(`document.documentElement.dataset.live || ""`) == "open"
	})
}

// TestConsoleMonitoring drives the monitoring pages of the console with a
// real drift episode: a deployment shown by server push, its traffic
// drifting on two columns, a retraining rule created through the form
// (a bad one first, refused naming its field), the alert's chain on its
// page against GET /v1/alerts/{id}, every chart of the deployment page
// against GET /v1/deployments/{name}/monitoring, and a dataset uploaded
// through its form. Screenshots are saved like TestConsoleCharts'.
func TestConsoleMonitoring(t *testing.T) {
	t.Parallel()
	chromium(t)
	c := harness.Start(t, withFastGateway(), withFastMonitor(time.Second))
	ctx := t.Context()
	mc := evaluatorv1.NewMonitorServiceClient(c.Conn)
	xs, ys := irisRows(t)
	irisWithShiftPolicy(t, c)

	// Server push: with the deployments page open, a deployment created
	// through the API shows by an event (its replica's job), not a poll.
	p := openConsole(t, c)
	p.run(chromedp.Navigate(c.HTTP + "/ui/#/deployments"))
	p.waitText("main", "No deployments yet.")
	p.waitLive()
	created := time.Now()
	_, err := gatewayv1.NewDeploymentServiceClient(c.Conn).CreateDeployment(ctx, &gatewayv1.CreateDeploymentRequest{Deployment: &gatewayv1.Deployment{
		Name: "iris", Model: "iris@production", MinReplicas: 1, MaxReplicas: 1, PayloadLogging: &gatewayv1.PayloadLogging{SampleRate: 1}}})
	require.NoError(t, err)
	p.waitText("#deployments", "iris", "iris@production")
	t.Logf("the new deployment showed %s after its creation", time.Since(created).Round(time.Millisecond))
	require.Equal(t, "event", p.eval(`document.getElementById("main").dataset.cause`), "redrawn by an event")
	require.NotEqual(t, "0", p.eval(`document.documentElement.dataset.liveEvents || "0"`))
	eventually(t, time.Minute, "deployment ready", func() bool {
		code, _ := httpDo(t, c, "GET", "/v2/models/iris/ready", nil)
		return code == http.StatusOK
	})

	// Shifted traffic; the first requests get their ground truth later.
	type sentReq struct {
		id     string
		labels []string
	}
	var mu sync.Mutex
	var labelled []sentReq
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		rnd := rand.New(rand.NewPCG(3, 5))
		rows := shifted(xs)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(40 * time.Millisecond):
			}
			pick := make([][]float64, 5)
			labels := make([]string, 5)
			for j := range pick {
				k := rnd.IntN(len(rows))
				pick[j], labels[j] = rows[k], ys[k]
			}
			id := fmt.Sprintf("cm-%d", i)
			if code, _ := inferRows(t, c, "iris", id, pick); code == http.StatusOK && i < 40 {
				mu.Lock()
				labelled = append(labelled, sentReq{id, labels})
				mu.Unlock()
			}
		}
	}()
	stopTraffic := sync.OnceFunc(func() { close(stop); <-done })
	t.Cleanup(stopTraffic)

	// The rule, through the form: a bad `for` is refused naming the
	// field, then the rule is created as typed.
	p.route("#/alerts")
	p.waitText("main", "Alerts", "No alert rules.")
	p.run(chromedp.Click(chromedp.CSS(`#rule-form-box summary`)))
	for sel, v := range map[string]string{"#rule-form-name": "iris-drift", "#rule-form-deployment": "iris", "#rule-form-series": "drifted_columns",
		"#rule-form-comparison": "COMPARISON_GREATER_OR_EQUAL", "#rule-form-threshold": "1", "#rule-form-for": "-1s",
		"#rule-form-labels": "team=ml", "#rule-form-action": "retrain", "#rule-form-dataset": "irisshift"} {
		p.run(chromedp.SetValue(chromedp.CSS(sel), v))
	}
	p.run(chromedp.Click(chromedp.CSS(`#rule-form-submit`)))
	p.waitText("#rule-form-out", "HTTP 400", "rule.for")
	p.screenshot("alert-rule-form-error")
	code, _ := httpDo(t, c, "GET", "/v1/alert-rules/iris-drift", nil)
	require.Equal(t, http.StatusNotFound, code, "a refused rule is not stored")
	p.run(chromedp.SetValue(chromedp.CSS(`#rule-form-for`), "1s"), chromedp.Click(chromedp.CSS(`#rule-form-submit`)))
	p.waitText("#rule-form-out", "Created.")
	p.waitText("#alert-rules", "iris-drift", "drifted_columns >= 1 for 1s", "retrain on irisshift")
	var rule evaluatorv1.GetAlertRuleResponse
	restGet(t, c, "/v1/alert-rules/iris-drift", &rule)
	require.Equal(t, "iris", rule.Rule.Deployment)
	require.Equal(t, "drifted_columns", rule.Rule.Series)
	require.Equal(t, evaluatorv1.Comparison_COMPARISON_GREATER_OR_EQUAL, rule.Rule.Comparison)
	require.Equal(t, 1.0, rule.Rule.Threshold)
	require.Equal(t, time.Second, rule.Rule.For.AsDuration())
	require.Equal(t, map[string]string{"team": "ml"}, rule.Rule.Labels)
	require.Equal(t, "retrain", rule.Rule.Action.GetKind())
	require.Equal(t, "irisshift", rule.Rule.Action.GetDataset())

	// The drift fires the rule; its retraining runs the whole chain.
	var alertID string
	eventually(t, time.Minute, "the rule fires", func() bool {
		r, err := mc.GetAlertRule(ctx, &evaluatorv1.GetAlertRuleRequest{Name: "iris-drift"})
		require.NoError(t, err)
		alertID = r.Rule.Alert
		return r.Rule.State == evaluatorv1.AlertState_ALERT_STATE_FIRING
	})
	mu.Lock()
	var fb []*evaluatorv1.Feedback
	for _, s := range labelled {
		fb = append(fb, &evaluatorv1.Feedback{RequestId: s.id, Labels: s.labels})
	}
	mu.Unlock()
	require.NotEmpty(t, fb)
	_, err = mc.SubmitFeedback(ctx, &evaluatorv1.SubmitFeedbackRequest{Deployment: "iris", Feedback: fb})
	require.NoError(t, err)

	p.route("#/alerts/" + alertID)
	p.waitText("main", "Alert "+alertID, "iris-drift", "bmaas alert get "+alertID)
	var alert evaluatorv1.GetAlertResponse
	eventually(t, 2*time.Minute, "the chain of actions completes", func() bool {
		restGet(t, c, "/v1/alerts/"+alertID, &alert)
		return hasKind(alert.Alert, "done")
	})
	p.waitText("#chain", "done")
	eventually(t, 30*time.Second, "the page's chain is the API's", func() bool {
		restGet(t, c, "/v1/alerts/"+alertID, &alert)
		want := make([]string, len(alert.Alert.Links))
		for i, l := range alert.Alert.Links {
			want[i] = l.Kind + " " + l.Ref
		}
		got := p.eval(`JSON.stringify([...document.querySelectorAll("#chain li")].map((li) => li.dataset.kind + " " + li.dataset.ref))`)
		wantJSON, _ := json.Marshal(want)
		return got == string(wantJSON)
	})
	for _, k := range []string{"job", "version", "evaluation", "decision", "rollout", "done"} {
		require.True(t, hasKind(alert.Alert, k), "no %s link in %v", k, alert.Alert.Links)
	}
	for kind, href := range map[string]string{"job": "#/jobs/", "version": "#/models/iris/versions/", "rollout": "#/deployments/iris"} {
		got := p.eval(`document.querySelector('#chain li[data-kind="` + kind + `"] a').getAttribute("href")`)
		require.Contains(t, got, href, kind)
	}
	p.screenshot("alert-chain")
	p.route("#/alerts")
	p.waitText("#alerts", alertID, "iris-drift", "job", "rollout", "done")
	p.screenshot("alerts")

	// The deployment page: each chart holds what the API reads, the
	// alert's moves marked. The traffic stops first so that the windows
	// settle.
	stopTraffic()
	p.route("#/deployments/iris?range=15m")
	since := url.QueryEscape(time.Now().Add(-15 * time.Minute).UTC().Format(time.RFC3339Nano))
	var windows evaluatorv1.ListMonitorWindowsResponse
	var alerts evaluatorv1.ListAlertsResponse
	eventually(t, 30*time.Second, "the deployment page's charts hold the API's windows", func() bool {
		restGet(t, c, "/v1/deployments/iris/monitoring?page_size=1000&since="+since, &windows)
		restGet(t, c, "/v1/alerts?rule=iris-drift", &alerts)
		want := monitorCharts(windows.Windows)
		for k, w := range want {
			got, ok := p.chart("chart-" + k)
			if !ok || !reflect.DeepEqual(w, got.points()) && !(len(w) == 0 && len(got.Series) == 0) {
				return false
			}
			var marks []string
			for _, m := range got.Markers {
				marks = append(marks, strconv.FormatFloat(m.X, 'f', 3, 64)+" "+m.Label)
			}
			sort.Strings(marks)
			if !reflect.DeepEqual(alertMarks(alerts.Alerts), marks) {
				return false
			}
		}
		return true
	})
	want := monitorCharts(windows.Windows)
	require.NotEmpty(t, want["performance"], "the windows of the labelled requests")
	require.Contains(t, want["drift"], "drifted")
	require.Len(t, want["drift"]["sepal_length_cm"], len(windows.Windows))
	require.NotEmpty(t, alertMarks(alerts.Alerts))
	p.waitText("#dep-rules", "iris-drift", "drifted_columns >= 1 for 1s")
	p.waitText("#drift-columns", "sepal_width_cm", "petal_length_cm")
	p.screenshot("deployment-monitoring")

	// A dataset through the upload form.
	csvPath, err := filepath.Abs(filepath.Join("..", "examples", "datasets", "iris.csv"))
	require.NoError(t, err)
	p.route("#/datasets")
	p.run(chromedp.Click(chromedp.CSS(`#dataset-form-box summary`)),
		chromedp.SetValue(chromedp.CSS(`#dataset-form-name`), "irisweb"),
		chromedp.SetUploadFiles(chromedp.CSS(`#dataset-form-file`), []string{csvPath}),
		chromedp.Click(chromedp.CSS(`#dataset-form-submit`)))
	p.waitText("#dataset-versions", "v1", "iris.csv", "150")
	var ds registryv1.GetDatasetResponse
	restGet(t, c, "/v1/datasets/irisweb", &ds)
	require.EqualValues(t, 150, ds.Dataset.Latest.GetStats().GetRows())
}

// TestConsoleLiveWithToken: with auth on, the console's events stream
// opens once signed in (it sends the bearer token as the API calls do),
// the deploy and training forms show the API's error (naming the field)
// beside them, and the training form submits a job and opens its page.
func TestConsoleLiveWithToken(t *testing.T) {
	t.Parallel()
	chromium(t)
	tokenFile := filepath.Join(t.TempDir(), "token")
	require.NoError(t, os.WriteFile(tokenFile, []byte("s3cret\n"), 0o600))
	c := harness.Start(t, harness.WithTokenFile(tokenFile))
	uploadDatasetFile(t, c.Registry, "iris", "iris.csv")

	p := openConsole(t, c)
	p.run(chromedp.Navigate(c.HTTP + "/ui/#/deployments"))
	p.waitText("main", "Sign in")
	p.run(chromedp.SendKeys(chromedp.CSS(`#token`), "s3cret"), chromedp.Click(chromedp.CSS(`#signin button`)))
	p.waitText("main", "No deployments yet.")
	p.waitLive()

	p.run(chromedp.Click(chromedp.CSS(`#deploy-form-box summary`)),
		chromedp.SetValue(chromedp.CSS(`#deploy-form-model`), "nope@1"),
		chromedp.Click(chromedp.CSS(`#deploy-form-submit`)))
	p.waitText("#deploy-form-out", "HTTP", "nope")
	code, body := httpDo(t, c, "GET", "/v1/deployments", nil)
	require.Equal(t, http.StatusOK, code)
	require.NotContains(t, string(body), "nope", "a refused deployment is not stored")

	p.route("#/jobs")
	p.run(chromedp.Click(chromedp.CSS(`#job-form-box summary`)),
		chromedp.SetValue(chromedp.CSS(`#job-form-model`), "flowers"),
		chromedp.SetValue(chromedp.CSS(`#job-form-dataset`), "iris"),
		chromedp.SetValue(chromedp.CSS(`#job-form-hyperparameters`), "max_iter=50"),
		chromedp.Click(chromedp.CSS(`#job-form-submit`)))
	p.waitText("#job-form-out", "HTTP 400", "spec.model", `model "flowers" not found`)
	_, err := c.Registry.CreateModel(t.Context(), &registryv1.CreateModelRequest{Model: &registryv1.Model{Name: "flowers"}})
	require.NoError(t, err)
	p.run(chromedp.Click(chromedp.CSS(`#job-form-submit`)))
	p.waitText("main", "Job ", "train · logistic")
	id := p.eval(`decodeURIComponent(location.hash.replace("#/jobs/", ""))`)
	var job schedulerv1.GetJobResponse
	restGet(t, c, "/v1/jobs/"+id, &job)
	require.Equal(t, "flowers", job.Job.Spec.Model)
	require.Equal(t, "logistic", job.Job.Spec.GetBuiltin().GetAlgorithm())
	require.Equal(t, "iris", job.Job.Spec.GetBuiltin().GetDataset())
	require.Equal(t, map[string]string{"max_iter": "50"}, job.Job.Spec.GetBuiltin().GetHyperparameters())
}

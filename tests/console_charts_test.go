//go:build integration

package tests

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	evaluatorv1 "github.com/bmaas/bmaas/api/bmaas/evaluator/v1"
	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
	schedulerv1 "github.com/bmaas/bmaas/api/bmaas/scheduler/v1"
	"github.com/bmaas/bmaas/tests/harness"
)

// gatedScript reports steps 1 to 4, waits (at most 30 s) for the file
// "go" in its working directory, then reports steps 5 to 10: the test
// sees the job's page while it runs, then lets it finish. Each step has
// a train and a validation line.
const gatedScript = `set -eu
step() {
  echo "{\"step\":$1,\"split\":\"train\",\"loss\":0.$((99 - $1 * 5)),\"accuracy\":0.$((40 + $1 * 4))}" >> "$BMAAS_METRICS_FILE"
  echo "{\"step\":$1,\"split\":\"validation\",\"loss\":0.$((99 - $1 * 4))}" >> "$BMAAS_METRICS_FILE"
}
for n in 1 2 3 4; do step $n; done
i=0
while [ ! -f go ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done
for n in 5 6 7 8 9 10; do step $n; sleep 0.1; done
echo onnx > "$BMAAS_OUTPUT_DIR/model.onnx"
`

// plotted is what a LineChart holds (its node's chart.plotted()).
type plotted struct {
	X      []float64 `json:"x"`
	Series []struct {
		Label string     `json:"label"`
		Y     []*float64 `json:"y"`
	} `json:"series"`
	Markers []struct {
		X     float64 `json:"x"`
		Label string  `json:"label"`
	} `json:"markers"`
}

// points is a series as x → y, without the gaps uPlot's alignment adds.
func (p plotted) points() map[string]map[float64]float64 {
	out := map[string]map[float64]float64{}
	for _, s := range p.Series {
		m := map[float64]float64{}
		for i, y := range s.Y {
			if y != nil {
				m[p.X[i]] = *y
			}
		}
		out[s.Label] = m
	}
	return out
}

// chart reads what the chart with DOM id holds ("" when none is drawn).
func (p *console) chart(id string) (plotted, bool) {
	p.t.Helper()
	raw := p.eval(`(() => { const el = document.getElementById(` + strconv.Quote(id) + `);
		return el && el.chart ? JSON.stringify(el.chart.plotted()) : ""; })()`)
	var out plotted
	if raw == "" {
		return out, false
	}
	require.NoError(p.t, json.Unmarshal([]byte(raw), &out))
	return out, true
}

// waitChart polls the chart id until ok holds of it and returns it.
func (p *console) waitChart(id string, what string, ok func(plotted) bool) plotted {
	p.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		got, drawn := p.chart(id)
		if drawn && ok(got) {
			return got
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("chart %s: %s: not within 30s; it holds %+v; the page shows:\n%s", id, what, got, p.text("main"))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// screenshot saves the whole page as <name>.png under $BMAAS_SCREENSHOTS
// (else the system's temporary directory's bmaas-screenshots).
func (p *console) screenshot(name string) {
	p.t.Helper()
	dir := os.Getenv("BMAAS_SCREENSHOTS")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "bmaas-screenshots")
	}
	require.NoError(p.t, os.MkdirAll(dir, 0o755))
	p.eval(`window.scrollTo(0, 0), ""`)
	img, err := chromedp.Run(p.ctx, chromedp.FullScreenshot(100))
	require.NoError(p.t, err)
	path := filepath.Join(dir, name+".png")
	require.NoError(p.t, os.WriteFile(path, img, 0o644))
	p.t.Logf("screenshot: %s", path)
}

// restGet reads a REST answer into msg, as the console reads it.
func restGet(t *testing.T, c *harness.Cluster, path string, msg proto.Message) {
	t.Helper()
	code, body := httpDo(t, c, "GET", path, nil)
	require.Equal(t, http.StatusOK, code, "%s: %s", path, body)
	require.NoError(t, protojson.Unmarshal(body, msg), path)
}

// jobMetrics reads all of a job's metrics samples over REST, page_size
// at a time, and checks that the last page's resume token reads nothing
// more of an ended job.
func jobMetrics(t *testing.T, c *harness.Cluster, id string, pageSize int) []*schedulerv1.JobMetricSample {
	t.Helper()
	var out []*schedulerv1.JobMetricSample
	token := ""
	for {
		var r schedulerv1.ListJobMetricsResponse
		restGet(t, c, fmt.Sprintf("/v1/jobs/%s/metrics?page_size=%d&page_token=%s", id, pageSize, url.QueryEscape(token)), &r)
		require.LessOrEqual(t, len(r.Samples), pageSize)
		out = append(out, r.Samples...)
		if r.NextPageToken == "" {
			var more schedulerv1.ListJobMetricsResponse
			restGet(t, c, fmt.Sprintf("/v1/jobs/%s/metrics?page_token=%s", id, url.QueryEscape(r.ResumeToken)), &more)
			require.Empty(t, more.Samples, "the resume token of an ended job reads nothing new")
			return out
		}
		token = r.NextPageToken
	}
}

// stepSeries is a job's per-step samples of rank 0 as split → step → value
// of one metric (the newest sample of a step wins).
func stepSeries(samples []*schedulerv1.JobMetricSample, metric string) map[string]map[float64]float64 {
	out := map[string]map[float64]float64{}
	for _, s := range samples {
		v, ok := s.Values[metric]
		if s.Final || !s.HasStep || s.Rank != 0 || !ok {
			continue
		}
		label := s.Split
		if label == "" {
			label = metric
		}
		if out[label] == nil {
			out[label] = map[float64]float64{}
		}
		out[label][float64(s.Step)] = v
	}
	return out
}

// TestConsoleCharts runs a process job that reports curves while the test
// watches its page, an mlp experiment on iris that promotes its best
// trial, and checks every chart of the job, experiment and model pages
// against the REST API the console reads, saving a screenshot of each.
func TestConsoleCharts(t *testing.T) {
	t.Parallel()
	chromium(t)
	c := harness.Start(t)
	ctx := t.Context()
	sc := schedulerv1.NewSchedulerServiceClient(c.Conn)
	ec := evaluatorv1.NewEvaluatorServiceClient(c.Conn)

	uploadDatasetFile(t, c.Registry, "iris", "iris.csv")
	for _, m := range []string{"iris", "curves"} {
		_, err := c.Registry.CreateModel(ctx, &registryv1.CreateModelRequest{Model: &registryv1.Model{Name: m}})
		require.NoError(t, err)
	}
	x, err := ec.CreateExperiment(ctx, &evaluatorv1.CreateExperimentRequest{Experiment: &evaluatorv1.Experiment{
		Model: "iris", Searcher: "random", Metric: "test_accuracy", MaxTrials: 3, Parallelism: 1, Seed: 5, PromoteBest: true, MaxEpochs: 12,
		Params: []*evaluatorv1.SearchParam{
			{Name: "lr", Type: evaluatorv1.ParamType_PARAM_TYPE_LOG_UNIFORM, Low: 1e-3, High: 1e-1},
			{Name: "hidden", Type: evaluatorv1.ParamType_PARAM_TYPE_CATEGORICAL, Values: []string{"4", "16"}},
		},
		Template: &evaluatorv1.TrialTemplate{Algorithm: "mlp", Dataset: "iris", Seed: 7, ValidationFraction: 0.2}}})
	require.NoError(t, err)
	xid := x.Experiment.Id

	gate := t.TempDir()
	sub, err := sc.SubmitJob(ctx, &schedulerv1.SubmitJobRequest{Spec: &schedulerv1.JobSpec{Model: "curves",
		Runtime: &schedulerv1.JobSpec_Process{Process: &schedulerv1.ProcessRuntime{
			Command: "/bin/sh", Args: []string{"-c", gatedScript}, Workdir: gate}}}})
	require.NoError(t, err)
	jid := sub.Job.Id

	// Bad paging arguments name their field.
	for _, q := range []string{"page_token=x", "page_token=0", "page_size=-1"} {
		code, body := httpDo(t, c, "GET", "/v1/jobs/"+jid+"/metrics?"+q, nil)
		require.Equal(t, http.StatusBadRequest, code, q)
		require.Contains(t, string(body), strings.SplitN(q, "=", 2)[0], q)
	}
	code, _ := httpDo(t, c, "GET", "/v1/jobs/nope/metrics", nil)
	require.Equal(t, http.StatusNotFound, code)

	// The job's page while it runs: the first four steps, then, on the
	// same chart (the page keeps it across its refreshes), all ten.
	p := openConsole(t, c)
	p.run(chromedp.Navigate(c.HTTP + "/ui/#/jobs/" + jid))
	p.waitChart("chart-loss", "the first 4 steps while running", func(g plotted) bool { return len(g.X) == 4 })
	p.waitText("#job-state", "running")
	p.eval(`document.getElementById("chart-loss").dataset.seen = "running", ""`)
	p.screenshot("job-running")
	require.NoError(t, os.WriteFile(filepath.Join(gate, "go"), nil, 0o644))
	job := waitJob(t, sc, jid, time.Minute)
	require.Equal(t, schedulerv1.JobState_JOB_STATE_SUCCEEDED, job.State, "reason: %s", job.Reason)
	p.waitText("#job-state", "succeeded")
	all := jobMetrics(t, c, jid, 1000)
	paged := jobMetrics(t, c, jid, 3)
	require.Len(t, paged, len(all))
	for i := range all {
		require.True(t, proto.Equal(all[i], paged[i]), "pages of 3 read the same samples: %v, %v", all[i], paged[i])
	}
	require.Len(t, stepSeries(all, "loss")["train"], 10)
	for _, metric := range []string{"loss", "accuracy"} {
		got := p.waitChart("chart-"+metric, "every step", func(g plotted) bool { return len(g.X) == 10 })
		require.Equal(t, stepSeries(all, metric), got.points(), metric)
	}
	require.Equal(t, "running", p.eval(`document.getElementById("chart-loss").dataset.seen || ""`),
		"the running job's chart grew in place")
	require.Equal(t, []string{"train", "validation"}, labels(p, "chart-loss"))
	p.screenshot("job-curves")

	// The experiment's page: the objective over time with the best so
	// far, each trial's curve, and the parameters against the objective.
	done := waitExperiment(t, func() (*evaluatorv1.Experiment, error) {
		r, err := ec.GetExperiment(ctx, &evaluatorv1.GetExperimentRequest{Id: xid})
		return r.GetExperiment(), err
	})
	var trials evaluatorv1.ListTrialsResponse
	restGet(t, c, "/v1/experiments/"+xid+"/trials", &trials)
	require.Len(t, trials.Trials, 3)
	p.route("#/experiments/" + xid)
	p.waitText("#trials", "best")
	obj := p.waitChart("chart-objective", "3 trials", func(g plotted) bool { return len(g.X) == 3 })
	// Each trial at the time of its job's last metrics sample, and the
	// best so far at each.
	type timed struct{ x, y float64 }
	var want []timed
	for _, tr := range trials.Trials {
		require.True(t, tr.HasValue, tr.Id)
		last := 0.0
		for _, s := range jobMetrics(t, c, tr.JobId, 1000) {
			last = math.Max(last, float64(s.Time.AsTime().UnixMilli())/1000)
		}
		want = append(want, timed{last, tr.Value})
	}
	sort.Slice(want, func(i, j int) bool { return want[i].x < want[j].x })
	require.Len(t, obj.Series, 2)
	best := math.Inf(-1)
	for i, w := range want {
		best = math.Max(best, w.y)
		require.InDelta(t, w.x, obj.X[i], 0.002, "trial %d's time", i)
		require.Equal(t, w.y, *obj.Series[0].Y[i], "trial %d's %s", i, obj.Series[0].Label)
		require.Equal(t, best, *obj.Series[1].Y[i], "the %s after trial %d", obj.Series[1].Label, i)
	}
	require.Equal(t, []string{"test_accuracy", "best test_accuracy"}, labels(p, "chart-objective"))
	require.InDelta(t, done.BestValue, best, 1e-12)

	curves := p.waitChart("chart-trial-curves", "a curve per trial", func(g plotted) bool { return len(g.Series) == 3 })
	gotCurves := curves.points()
	for _, tr := range trials.Trials {
		want := stepSeries(jobMetrics(t, c, tr.JobId, 1000), "loss")["validation"]
		require.NotEmpty(t, want, "trial %s reports its validation loss every epoch", tr.Id)
		require.Equal(t, want, gotCurves[tr.Id], "trial %s", tr.Id)
	}

	var par struct {
		Axes []string `json:"axes"`
		Rows []struct {
			ID     string         `json:"id"`
			Values map[string]any `json:"values"`
		} `json:"rows"`
	}
	require.NoError(t, json.Unmarshal([]byte(p.eval(`JSON.stringify({axes: JSON.parse(document.getElementById("chart-params").dataset.axes),
		rows: JSON.parse(document.getElementById("chart-params").dataset.rows)})`)), &par))
	require.ElementsMatch(t, []string{"lr", "hidden", "test_accuracy"}, par.Axes)
	require.Len(t, par.Rows, 3)
	for _, row := range par.Rows {
		var tr *evaluatorv1.Trial
		for _, x := range trials.Trials {
			if x.Id == row.ID {
				tr = x
			}
		}
		require.NotNil(t, tr, row.ID)
		require.Equal(t, tr.Params["lr"], row.Values["lr"])
		require.Equal(t, tr.Params["hidden"], row.Values["hidden"])
		require.InDelta(t, tr.Value, row.Values["test_accuracy"], 1e-12)
	}
	require.Equal(t, "3", p.eval(`String(document.querySelectorAll("#chart-params polyline").length)`))
	require.Equal(t, done.BestTrialId, p.eval(`document.querySelector("#chart-params polyline.best").dataset.row`))
	p.screenshot("experiment-charts")

	// The model's page: each metric across the versions, the promotion
	// of the best trial's version and the alias it moved marked.
	var decisions evaluatorv1.ListDecisionsResponse
	eventually(t, 30*time.Second, "the best trial's promotion decision", func() bool {
		restGet(t, c, "/v1/models/iris/decisions", &decisions)
		return len(decisions.Decisions) > 0
	})
	var versions registryv1.ListModelVersionsResponse
	restGet(t, c, "/v1/models/iris/versions", &versions)
	require.Len(t, versions.Versions, 3)
	var model registryv1.GetModelResponse
	restGet(t, c, "/v1/models/iris", &model)
	p.route("#/models/iris")
	acc := p.waitChart("chart-accuracy", "3 versions", func(g plotted) bool { return len(g.X) == 3 && len(g.Markers) > 0 })
	wantAcc := map[string]map[float64]float64{}
	for _, v := range versions.Versions {
		for _, split := range []string{"train", "validation", "test"} {
			if val, ok := v.Metrics[split+"_accuracy"]; ok {
				if wantAcc[split] == nil {
					wantAcc[split] = map[float64]float64{}
				}
				wantAcc[split][float64(v.Version)] = val
			}
		}
	}
	require.Contains(t, wantAcc, "test")
	require.Equal(t, wantAcc, acc.points())
	var wantMarks []string
	for _, d := range decisions.Decisions {
		if d.Promoted {
			wantMarks = append(wantMarks, fmt.Sprintf("%d promoted → %s", d.Version, d.TargetAlias))
		}
	}
	require.NotEmpty(t, wantMarks, "the best trial's version was promoted")
	for alias, v := range model.Model.Aliases {
		wantMarks = append(wantMarks, fmt.Sprintf("%d %s", v, alias))
	}
	var gotMarks []string
	for _, m := range acc.Markers {
		gotMarks = append(gotMarks, fmt.Sprintf("%g %s", m.X, m.Label))
	}
	require.ElementsMatch(t, wantMarks, gotMarks)
	p.screenshot("model-charts")
}

// labels are the series labels of the chart with DOM id.
func labels(p *console, id string) []string {
	p.t.Helper()
	got, ok := p.chart(id)
	require.True(p.t, ok, id)
	out := make([]string, len(got.Series))
	for i, s := range got.Series {
		out[i] = s.Label
	}
	return out
}

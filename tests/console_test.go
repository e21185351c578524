//go:build integration

package tests

import (
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	evaluatorv1 "github.com/bmaas/bmaas/api/bmaas/evaluator/v1"
	gatewayv1 "github.com/bmaas/bmaas/api/bmaas/gateway/v1"
	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
	schedulerv1 "github.com/bmaas/bmaas/api/bmaas/scheduler/v1"
	"github.com/bmaas/bmaas/tests/harness"
)

// chromium finds a Chromium to drive. Without one the console tests skip,
// except under CI, where a missing browser fails them.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("chromium not found; .ci/run installs it (apt-get install chromium)")
	}
	t.Skip("chromium not found (apt-get install chromium)")
	return ""
}

// console is a headless Chromium tab on a cluster's HTTP edge.
type console struct {
	t    *testing.T
	ctx  context.Context
	base string
}

func openConsole(t *testing.T, c *harness.Cluster) *console {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium(t)), chromedp.NoSandbox, chromedp.DisableGPU, chromedp.WindowSize(1400, 1000),
		chromedp.UserDataDir(t.TempDir()))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelTab(); cancelAlloc() })
	require.NoError(t, chromedp.Do(ctx), "start chromium")
	return &console{t: t, ctx: ctx, base: c.HTTP}
}

// run runs browser actions one by one with a bound, so a missing element
// fails the test instead of hanging it. A step whose element a live
// redraw replaced between its query and its action (the browser's "No
// node with given id") did nothing, and runs again on the new element.
func (p *console) run(steps ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 30*time.Second)
	defer cancel()
	for _, step := range steps {
		err := chromedp.Do(ctx, step)
		for try := 0; err != nil && strings.Contains(err.Error(), "given id") && try < 5 && ctx.Err() == nil; try++ {
			err = chromedp.Do(ctx, step)
		}
		require.NoError(p.t, err)
	}
}

func (p *console) eval(js string) string {
	p.t.Helper()
	out, err := p.tryEval(js)
	require.NoError(p.t, err, js)
	return out
}

// tryEval is eval for a page that may be navigating: the browser then
// answers that the target navigated, and the caller polls again.
func (p *console) tryEval(js string) (string, error) {
	ctx, cancel := context.WithTimeout(p.ctx, 30*time.Second)
	defer cancel()
	return chromedp.Run(ctx, chromedp.Evaluate[string](js))
}

// route moves to a hash route, as following a link of the console does.
func (p *console) route(hash string) {
	p.t.Helper()
	p.eval(`location.hash = ` + strconv.Quote(hash))
}

// text is the rendered text of the first element matching sel ("" when
// there is none).
func (p *console) text(sel string) string {
	p.t.Helper()
	return p.eval(`(document.querySelector(` + strconv.Quote(sel) + `) || {}).innerText || ""`)
}

// waitText polls until the text of sel holds every want and returns it.
func (p *console) waitText(sel string, wants ...string) string {
	p.t.Helper()
	deadline := time.Now().Add(45 * time.Second)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		got := p.text(sel)
		missing := ""
		for _, w := range wants {
			if !strings.Contains(got, w) {
				missing = w
				break
			}
		}
		if missing == "" {
			return got
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("%s does not show %q; the page shows:\n%s", sel, missing, p.text("main"))
		}
		<-tick.C
	}
}

// TestConsoleShowsPlatform seeds a dataset, a model with a trained
// version and an alias, an experiment, a deployment and a job no node can
// hold, then walks every view of the console in headless Chromium.
func TestConsoleShowsPlatform(t *testing.T) {
	t.Parallel()
	chromium(t)
	c := harness.Start(t, withFastGateway())
	ctx := t.Context()
	sc := schedulerv1.NewSchedulerServiceClient(c.Conn)
	ec := evaluatorv1.NewEvaluatorServiceClient(c.Conn)

	uploadDatasetFile(t, c.Registry, "iris", "iris.csv")
	_, err := c.Registry.CreateModel(ctx, &registryv1.CreateModelRequest{Model: &registryv1.Model{Name: "iris", Description: "flowers"}})
	require.NoError(t, err)
	v := trainVersion(t, c, "iris", "iris", "logistic")
	setAlias(t, c, "iris", "production", strconv.FormatInt(v, 10))
	x, err := ec.CreateExperiment(ctx, &evaluatorv1.CreateExperimentRequest{Experiment: irisExperiment(3, 3)})
	require.NoError(t, err)
	xid := x.Experiment.Id
	waitExperiment(t, func() (*evaluatorv1.Experiment, error) {
		r, err := ec.GetExperiment(ctx, &evaluatorv1.GetExperimentRequest{Id: xid})
		return r.GetExperiment(), err
	})
	_, err = gatewayv1.NewDeploymentServiceClient(c.Conn).CreateDeployment(ctx, &gatewayv1.CreateDeploymentRequest{
		Deployment: &gatewayv1.Deployment{Name: "iris-web", Model: "iris@production", MinReplicas: 1, MaxReplicas: 1}})
	require.NoError(t, err)
	eventually(t, time.Minute, "deployment ready", func() bool {
		code, _ := httpDo(t, c, "GET", "/v2/models/iris-web/ready", nil)
		return code == http.StatusOK
	})
	spec := builtinSpec("iris", "iris", "logistic", nil)
	spec.Resources = &schedulerv1.Resources{Gpus: 8}
	stuck, err := sc.SubmitJob(ctx, &schedulerv1.SubmitJobRequest{Spec: spec})
	require.NoError(t, err)
	stuckID := stuck.Job.Id
	nodes, err := sc.ListNodes(ctx, &schedulerv1.ListNodesRequest{})
	require.NoError(t, err)
	require.NotEmpty(t, nodes.Nodes)
	node := nodes.Nodes[0].Name

	p := openConsole(t, c)
	p.run(chromedp.Navigate(c.HTTP + "/"))
	require.Equal(t, c.HTTP+"/ui/", p.eval(`location.origin + location.pathname`), "the root redirects to the console")

	// Overview: the counts and the recent jobs.
	p.waitText("#count-models", "1", "Models")
	p.waitText("#count-deployments", "1", "Deployments")
	p.waitText("#count-nodes", "1", "Nodes")
	p.waitText("#jobs", stuckID, "queued", "succeeded")

	// Models, then a model's page through its link.
	p.run(chromedp.Click(chromedp.CSS(`#nav a[data-view="models"]`)))
	p.waitText("#models", "iris", "production→v1")
	p.run(chromedp.Click(chromedp.CSS(`#models a[href="#/models/iris"]`)))
	versions := p.waitText("#versions", "v1", "ready", "native", "production", "test_accuracy")
	require.GreaterOrEqual(t, strings.Count(versions, "ready"), 4, "the trained version and the trials' ones:\n%s", versions)
	p.waitText("#aliases", "production", "v1")
	p.waitText("main", "Promotion decisions", "Evaluations", "flowers")
	p.route("#/models/iris/versions/1")
	p.waitText("main", "iris v1", "test_accuracy", "sepal_length_cm", "logistic")

	// Datasets: rows and columns of the newest version.
	p.run(chromedp.Click(chromedp.CSS(`#nav a[data-view="datasets"]`)))
	p.waitText("#datasets", "iris", "150", "5")
	p.route("#/datasets/iris")
	p.waitText("#dataset-versions", "v1", "iris.csv", "150")

	// Jobs: the list, its state filter, and a job's page with Cancel.
	p.run(chromedp.Click(chromedp.CSS(`#nav a[data-view="jobs"]`)))
	p.waitText("#jobs", stuckID, "queued", "succeeded", "train · logistic", "serve · iris-web")
	p.route("#/jobs?state=QUEUED")
	p.waitText("main", "1 shown")
	require.Equal(t, "QUEUED", p.eval(`[...document.querySelectorAll('#jobs tbody tr')].map(r => r.dataset.state).join(",")`))
	p.route("#/jobs/" + stuckID)
	p.waitText("main", "Job "+stuckID, "Unschedulable", "8 GPU", "submitted")
	p.waitText("#logs", "No log lines.")
	p.run(chromedp.Click(chromedp.CSS(`#cancel`)))
	p.run(chromedp.Click(chromedp.CSS(`#cancel-confirm`)))
	p.waitText("#job-state", "cancelled")
	p.waitText("#history", "cancelled from the console")
	got, err := sc.GetJob(ctx, &schedulerv1.GetJobRequest{Id: stuckID})
	require.NoError(t, err)
	require.Equal(t, schedulerv1.JobState_JOB_STATE_CANCELLED, got.Job.State)
	require.Empty(t, p.eval(`document.querySelector('#cancel') ? 'still there' : ''`), "no Cancel on an ended job")

	// A job's page shows its last log lines (over REST's stream).
	js, err := sc.ListJobs(ctx, &schedulerv1.ListJobsRequest{})
	require.NoError(t, err)
	serveID := ""
	for _, j := range js.Jobs {
		if j.Spec.GetServing() != nil {
			serveID = j.Id
		}
	}
	require.NotEmpty(t, serveID)
	p.route("#/jobs/" + serveID)
	p.waitText("#logs", `serving iris version 1 as "iris-web"`)

	// Experiments: the trials sorted by the objective, the best one marked.
	p.run(chromedp.Click(chromedp.CSS(`#nav a[data-view="experiments"]`)))
	p.waitText("#experiments", xid, "random", "succeeded", "3 / 3")
	p.route("#/experiments/" + xid)
	p.waitText("#trials", "succeeded", "best")
	best, err := ec.GetBestTrial(ctx, &evaluatorv1.GetBestTrialRequest{ExperimentId: xid})
	require.NoError(t, err)
	require.Equal(t, best.Trial.Id, p.eval(`document.querySelector('#trials tbody tr.best').dataset.trial`))
	require.Equal(t, best.Trial.Id, p.eval(`document.querySelector('#trials tbody tr').dataset.trial`), "best trial first")

	// Deployments and a deployment's replicas.
	p.run(chromedp.Click(chromedp.CSS(`#nav a[data-view="deployments"]`)))
	p.waitText("#deployments", "iris-web", "iris@production", "v1", "1 / 1")
	p.route("#/deployments/iris-web")
	p.waitText("#replicas", node, "ready", "running")
	// Scale it from the page. The page sends an update mask naming the
	// replica bounds: a change made since it was drawn survives.
	dc := gatewayv1.NewDeploymentServiceClient(c.Conn)
	_, err = dc.UpdateDeployment(ctx, &gatewayv1.UpdateDeploymentRequest{Deployment: &gatewayv1.Deployment{Name: "iris-web", TargetConcurrency: 7},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"target_concurrency"}}})
	require.NoError(t, err)
	p.run(chromedp.SetValue(chromedp.CSS(`#dep-max`), "2"), chromedp.Click(chromedp.CSS(`#dep-scale`)))
	eventually(t, 30*time.Second, "max replicas 2 through the console", func() bool {
		d, err := dc.GetDeployment(ctx, &gatewayv1.GetDeploymentRequest{Name: "iris-web"})
		return err == nil && d.Deployment.MaxReplicas == 2
	})
	d, err := dc.GetDeployment(ctx, &gatewayv1.GetDeploymentRequest{Name: "iris-web"})
	require.NoError(t, err)
	require.Equal(t, int32(7), d.Deployment.TargetConcurrency, "the console's scale keeps what it did not name")
	p.waitText("main", "max 2")

	// A running experiment: pause, resume and cancel it from its page.
	long, err := ec.CreateExperiment(ctx, &evaluatorv1.CreateExperimentRequest{Experiment: irisExperiment(10000, 1)})
	require.NoError(t, err)
	p.route("#/experiments/" + long.Experiment.Id)
	p.run(chromedp.Click(chromedp.CSS(`#x-pause`)))
	p.waitText("main", "paused")
	p.run(chromedp.Click(chromedp.CSS(`#x-resume`)))
	p.waitText("#x-pause", "Pause")
	p.run(chromedp.Click(chromedp.CSS(`#x-cancel`)))
	p.waitText("main", "cancelled")
	lx, err := ec.GetExperiment(ctx, &evaluatorv1.GetExperimentRequest{Id: long.Experiment.Id})
	require.NoError(t, err)
	require.Equal(t, evaluatorv1.ExperimentState_EXPERIMENT_STATE_CANCELLED, lx.Experiment.State)

	// Nodes: capacity and allocation.
	p.run(chromedp.Click(chromedp.CSS(`#nav a[data-view="nodes"]`)))
	p.waitText("#nodes", node, "ready", "GiB")

	// An API error shows its message; an unknown route says so.
	p.route("#/models/nope")
	p.waitText(".error", "HTTP 404", `model "nope" not found`)
	p.route("#/nowhere")
	p.waitText("main", "No page at #/nowhere")
}

// TestConsoleAuth: with auth on, the console's files load without the
// token, the page asks for it, refuses a wrong one, shows the data with
// the right one (sent as a bearer token from sessionStorage), and signs
// out.
func TestConsoleAuth(t *testing.T) {
	t.Parallel()
	chromium(t)
	tokenFile := filepath.Join(t.TempDir(), "token")
	require.NoError(t, os.WriteFile(tokenFile, []byte("s3cret\n"), 0o600))
	c := harness.Start(t, harness.WithTokenFile(tokenFile))
	_, err := c.Registry.CreateModel(t.Context(), &registryv1.CreateModelRequest{Model: &registryv1.Model{Name: "private"}})
	require.NoError(t, err)

	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, tc := range []struct {
		path     string
		client   *http.Client
		want     int
		location string
	}{
		{"/", noRedirect, http.StatusFound, "/ui/"},
		{"/ui", noRedirect, http.StatusTemporaryRedirect, "/ui/"},
		{"/ui/", http.DefaultClient, http.StatusOK, ""},
		{"/ui/js/app.js", http.DefaultClient, http.StatusOK, ""},
		{"/v1/models", http.DefaultClient, http.StatusUnauthorized, ""},
		// A path under /ui/ that leads elsewhere is not public.
		{"/ui/../v1/models", http.DefaultClient, http.StatusUnauthorized, ""},
	} {
		req, err := http.NewRequestWithContext(t.Context(), "GET", c.HTTP+tc.path, nil)
		require.NoError(t, err)
		resp, err := tc.client.Do(req)
		require.NoError(t, err)
		_ = resp.Body.Close()
		require.Equal(t, tc.want, resp.StatusCode, tc.path)
		if tc.location != "" {
			require.Equal(t, tc.location, resp.Header.Get("Location"), tc.path)
		}
	}

	p := openConsole(t, c)
	p.run(chromedp.Navigate(c.HTTP + "/ui/#/models"))
	p.waitText("main", "Sign in", "--auth.token-file")
	require.NotContains(t, p.text("main"), "private")

	p.run(chromedp.SendKeys(chromedp.CSS(`#token`), "guess"), chromedp.Click(chromedp.CSS(`#signin button`)))
	p.waitText("main", "The token was rejected", "Sign in")

	p.run(chromedp.SendKeys(chromedp.CSS(`#token`), "s3cret"), chromedp.Click(chromedp.CSS(`#signin button`)))
	p.waitText("#models", "private")
	require.Equal(t, "s3cret", p.eval(`sessionStorage.getItem("bmaas.token")`))
	p.route("#/datasets")
	p.waitText("main", "No datasets yet.")

	p.run(chromedp.Click(chromedp.CSS(`#signout`)))
	p.waitText("main", "Sign in")
	require.Empty(t, p.eval(`sessionStorage.getItem("bmaas.token") || ""`))
}

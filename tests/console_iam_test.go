//go:build integration

package tests

import (
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"
	"github.com/zitadel/oidc/v3/example/server/exampleop"
	"github.com/zitadel/oidc/v3/example/server/storage"

	iamv1 "github.com/bmaas/bmaas/api/bmaas/iam/v1"
	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
	schedulerv1 "github.com/bmaas/bmaas/api/bmaas/scheduler/v1"
	"github.com/bmaas/bmaas/internal/app"
)

// rows is the data-KEY of each row of the table sel, sorted.
func (p *console) rows(sel, key string) []string {
	p.t.Helper()
	out, err := p.tryEval(`[...document.querySelectorAll(` + jsString(sel+" tbody tr") + `)].map(r => r.dataset.` + key + ` || "").join("\n")`)
	if err != nil || out == "" {
		return nil
	}
	got := strings.Split(out, "\n")
	slices.Sort(got)
	return got
}

// waitRows polls until the rows of sel are want (sorted).
func (p *console) waitRows(sel, key string, want []string) {
	p.t.Helper()
	want = slices.Sorted(slices.Values(want))
	deadline := time.Now().Add(45 * time.Second)
	for {
		got := p.rows(sel, key)
		if slices.Equal(got, want) {
			return
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("%s lists %v, want %v; the page shows:\n%s", sel, got, want, p.text("main"))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitEval polls js until it answers want.
func (p *console) waitEval(js, want string) {
	p.t.Helper()
	deadline := time.Now().Add(45 * time.Second)
	for {
		got, err := p.tryEval(js)
		if err == nil && got == want {
			return
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("%s: got %q (%v), want %q", js, got, err, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func jsString(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
	return `"` + r.Replace(s) + `"`
}

// chooseProject picks name in the header's project switcher, as a person
// does.
func (p *console) chooseProject(name string) {
	p.t.Helper()
	p.eval(`(() => { const s = document.getElementById("project"); s.value = ` + jsString(name) + `; s.dispatchEvent(new Event("change")); return ""; })()`)
}

// TestConsoleIAMToken: signed in with a token, the console shows who is
// signed in (the bootstrap admin) and lets them switch between the
// projects they see: the jobs page then lists only that project's jobs,
// and a job trained from the page goes to it (the Bmaas-Project
// header). The Projects page shows each project's roles, quota and what
// its running jobs hold (GPUs x workers, CPU, memory) against it.
func TestConsoleIAMToken(t *testing.T) {
	t.Parallel()
	chromium(t)
	c, admin := authCluster(t, func(cfg *app.Config) {
		cfg.TrainerAgent.FakeGPUs = 2
		cfg.TrainerAgent.CPUMillis = 8000
		cfg.TrainerAgent.MemoryBytes = 16 << 30
	})
	ctx := t.Context()
	conn := dialAs(t, c.Addrs.GRPC, admin)
	_, err := iamv1.NewIAMServiceClient(conn).CreateProject(ctx, &iamv1.CreateProjectRequest{Project: &iamv1.Project{
		Name: "vision", Description: "image models",
		Quota: &iamv1.Quota{Gpus: 4, CpuMillis: 8000, MemoryBytes: 16 << 30, Jobs: 3}}})
	require.NoError(t, err)

	// One small training job in each project, then a job that holds two
	// workers of one GPU, 1 CPU and 1 GiB each in "vision".
	// Each project has its own iris (names are per project).
	for _, name := range []string{"iris", "vision/iris"} {
		uploadDatasetFile(t, c.Registry, name, "iris.csv")
		_, err = c.Registry.CreateModel(ctx, &registryv1.CreateModelRequest{Model: &registryv1.Model{Name: name}})
		require.NoError(t, err)
	}
	sc := schedulerv1.NewSchedulerServiceClient(conn)
	trained := map[string]string{}
	for _, proj := range []string{"default", "vision"} {
		spec := builtinSpec("iris", "iris", "logistic", nil)
		spec.Project = proj
		sub, err := sc.SubmitJob(ctx, &schedulerv1.SubmitJobRequest{Spec: spec})
		require.NoError(t, err)
		job := waitJob(t, sc, sub.Job.Id, 2*time.Minute)
		require.Equal(t, schedulerv1.JobState_JOB_STATE_SUCCEEDED, job.State, "reason: %s", job.Reason)
		require.Equal(t, proj, job.Spec.Project)
		trained[proj] = job.Id
	}
	sub, err := sc.SubmitJob(ctx, &schedulerv1.SubmitJobRequest{Spec: &schedulerv1.JobSpec{
		Model: "iris", Project: "vision", Workers: 2,
		Resources: &schedulerv1.Resources{CpuMillis: 1000, MemoryBytes: 1 << 30, Gpus: 1},
		Runtime:   &schedulerv1.JobSpec_Process{Process: &schedulerv1.ProcessRuntime{Command: "sleep", Args: []string{"600"}}}}})
	require.NoError(t, err)
	holding := sub.Job.Id
	waitJobState(t, sc, holding, schedulerv1.JobState_JOB_STATE_RUNNING)
	t.Cleanup(func() {
		_, _ = sc.CancelJob(t.Context(), &schedulerv1.CancelJobRequest{Id: holding, Reason: "the test is done with it"})
	})

	// Sign in with the form: no single sign-on on this server.
	p := openConsole(t, c)
	p.run(chromedp.Navigate(c.HTTP + "/ui/#/jobs"))
	p.waitText("main", "Sign in", "--auth.token-file")
	require.Empty(t, p.eval(`document.querySelector("#sso") ? "shown" : ""`), "no single sign-on link without a web client")
	require.Empty(t, p.eval(`document.querySelector("#whoami").hidden ? "" : "shown"`), "nobody is signed in yet")
	p.run(chromedp.SendKeys(chromedp.CSS(`#token`), admin), chromedp.Click(chromedp.CSS(`#signin button`)))
	p.waitText("#whoami", "admin")
	p.waitEval(`[...document.querySelectorAll("#project option")].map(o => o.value + "=" + o.text).join(",")`,
		"=All projects,default=default,vision=vision")

	// All projects: every job; then only vision's, wherever the list is.
	p.waitRows("#jobs", "job", []string{trained["default"], trained["vision"], holding})
	p.chooseProject("vision")
	p.waitRows("#jobs", "job", []string{trained["vision"], holding})
	p.waitText("main", "in project vision")
	require.Equal(t, "vision", p.eval(`sessionStorage.getItem("bmaas.project")`))
	p.screenshot("iam-jobs-vision")
	p.route("#/")
	p.waitText("main", "Recent jobs of vision")
	p.waitRows("#jobs", "job", []string{trained["vision"], holding})
	p.chooseProject("default")
	p.waitRows("#jobs", "job", []string{trained["default"]})
	// The choice outlives a reload (sessionStorage), as the token does.
	p.run(chromedp.Reload())
	p.waitText("#whoami", "admin")
	p.waitRows("#jobs", "job", []string{trained["default"]})
	require.Equal(t, "default", p.eval(`document.getElementById("project").value`))

	// Projects: roles, quota and use now.
	p.run(chromedp.Click(chromedp.CSS(`#nav a[data-view="projects"]`)))
	p.waitText("#project-vision", "vision", "image models", "cluster-admin")
	use := func(project, resource string) string {
		return `(document.querySelector('#quota-` + project + ` tr[data-resource="` + resource + `"]') || {}).innerText || ""`
	}
	for resource, want := range map[string]string{
		"gpus":         "2 of 4",
		"cpu_millis":   "2 of 8",
		"memory_bytes": "2.0 GiB of 16 GiB",
		"jobs":         "1 of 3",
	} {
		p.waitEval(`(`+use("vision", resource)+`).includes(`+jsString(want)+`) ? "yes" : (`+use("vision", resource)+`)`, "yes")
	}
	p.waitText("#project-default", "default", "cluster-admin", "no quota")
	require.Contains(t, p.text(`#quota-default tr[data-resource="gpus"]`), "0")
	p.screenshot("iam-projects")
	// Work in vision from its section.
	p.run(chromedp.Click(chromedp.CSS(`#use-vision`)))
	p.waitRows("#jobs", "job", []string{trained["vision"], holding})
	require.Equal(t, "vision", p.eval(`document.getElementById("project").value`))

	// A job trained from the page goes to the project chosen: the console
	// sends it as the Bmaas-Project header, the spec naming none.
	p.run(chromedp.Click(chromedp.CSS(`#job-form-box summary`)),
		chromedp.SetValue(chromedp.CSS(`#job-form-model`), "iris"),
		chromedp.SetValue(chromedp.CSS(`#job-form-dataset`), "iris"),
		chromedp.Click(chromedp.CSS(`#job-form-submit`)))
	p.waitText("main", "Job ", "train · logistic")
	id := p.eval(`decodeURIComponent(location.hash.replace("#/jobs/", ""))`)
	got, err := sc.GetJob(ctx, &schedulerv1.GetJobRequest{Id: id})
	require.NoError(t, err)
	require.Equal(t, "vision", got.Job.Spec.Project)

	// The models page lists the project's models, and a model's page
	// reads it by its qualified name.
	names := `[...document.querySelectorAll("#models tbody tr td:first-child")].map(td => td.innerText).join(",")`
	p.route("#/models")
	p.waitEval(names, "vision/iris")
	p.run(chromedp.Click(chromedp.CSS(`#models tbody tr td:first-child a`)))
	p.waitText("main", "vision/iris", "v1")
	p.chooseProject("default")
	p.route("#/models")
	p.waitEval(names, "iris")

	// Signing out forgets the project with the token.
	p.run(chromedp.Click(chromedp.CSS(`#signout`)))
	p.waitText("main", "Sign in")
	require.Empty(t, p.eval(`sessionStorage.getItem("bmaas.project") || ""`))
	require.Empty(t, p.eval(`document.querySelector(".switcher").hidden ? "" : "shown"`))
}

// webProvider is oidcProvider with the console's web client as well,
// registered once the cluster's edge, its redirect target, is known: the
// provider's clients are a map of this test's own (the example storage's
// shared one is written by every test that registers a client).
type webProvider struct {
	*httptest.Server
	st      *storage.Storage
	clients map[string]*storage.Client
}

func oidcWebProvider(t *testing.T) *webProvider {
	t.Helper()
	dir := people{
		"alice@example.com":   {ID: "alice@example.com", Username: "alice@example.com", Password: "pw-alice", Email: "alice@example.com", EmailVerified: true},
		"mallory@example.com": {ID: "mallory@example.com", Username: "mallory@example.com", Password: "pw-mallory", Email: "mallory@example.com"},
	}
	w := &webProvider{clients: map[string]*storage.Client{}}
	w.st = storage.NewStorageWithClients(dir, w.clients)
	w.Server = httptest.NewUnstartedServer(nil)
	w.Start()
	w.Config.Handler = exampleop.SetupServer(w.URL, w.st, slog.New(slog.DiscardHandler), false)
	t.Cleanup(w.Close)
	return w
}

// register adds the console's client, redirecting to edge's callback.
// The storage reads its clients under its lock: a call that takes it
// orders this write before any request's read.
func (w *webProvider) register(edge string) {
	w.clients["bmaas-web"] = storage.WebClient("bmaas-web", "web-secret", edge+"/v1/login/oidc/callback")
	_ = w.st.CheckUsernamePasswordSimple("", "")
}

// signInAt fills the provider's login form, once the browser is on it.
func (p *console) signInAt(op, user, password string) {
	p.t.Helper()
	p.waitEval(`location.origin + location.pathname`, op+"/login/username")
	p.run(chromedp.WaitVisible(chromedp.CSS(`#username`)),
		chromedp.SendKeys(chromedp.CSS(`#username`), user),
		chromedp.SendKeys(chromedp.CSS(`#password`), password),
		chromedp.Click(chromedp.CSS(`button[type="submit"]`)))
}

// TestConsoleIAMSingleSignOn: the console's sign-in offers single
// sign-on when the server has a web client; it goes through a real
// OpenID Connect provider's login form and back. A person with no role
// comes back to the sign-in with the reason; alice comes back signed in
// as herself, her session token kept in the tab and gone from the
// address bar.
func TestConsoleIAMSingleSignOn(t *testing.T) {
	t.Parallel()
	chromium(t)
	op := oidcWebProvider(t)
	secret := filepath.Join(t.TempDir(), "web-secret")
	require.NoError(t, os.WriteFile(secret, []byte("web-secret\n"), 0o600))
	c, _ := authCluster(t, func(cfg *app.Config) {
		cfg.OIDC.Issuer, cfg.OIDC.ClientID = op.URL, "bmaas"
		cfg.OIDC.WebClientID, cfg.OIDC.WebClientSecretFile = "bmaas-web", secret
		cfg.OIDC.UsernameClaim = "sub"
		cfg.OIDC.Roles = []string{"user:alice@example.com=default:editor"}
	})
	op.register(c.HTTP)

	p := openConsole(t, c)
	p.run(chromedp.Navigate(c.HTTP + "/ui/"))
	p.waitText("#sso", "Sign in with single sign-on")
	p.waitText("main", "or with a token")
	p.screenshot("iam-signin")

	// mallory has no role: back at the sign-in, saying why.
	p.run(chromedp.Click(chromedp.CSS(`#sso`)))
	p.signInAt(op.URL, "mallory@example.com", "pw-mallory")
	p.waitText("main", "Single sign-on failed", "mallory@example.com has no role")
	require.Empty(t, p.eval(`sessionStorage.getItem("bmaas.token") || ""`))

	p.run(chromedp.Click(chromedp.CSS(`#sso`)))
	p.signInAt(op.URL, "alice@example.com", "pw-alice")
	p.waitText("#whoami", "alice@example.com")
	require.Equal(t, c.HTTP+"/ui/#/", p.eval(`location.href`), "the token is gone from the address bar")
	require.True(t, strings.HasPrefix(p.eval(`sessionStorage.getItem("bmaas.token") || ""`), "bmaas_"), "the session token is kept in the tab")
	p.waitEval(`[...document.querySelectorAll("#project option")].map(o => o.value).join(",")`, ",default")
	p.waitText("#count-models", "Models")
	p.screenshot("iam-sso-signed-in")

	// Her roles on the Projects page; the API answers her as herself.
	p.run(chromedp.Click(chromedp.CSS(`#nav a[data-view="projects"]`)))
	p.waitText("#project-default", "editor")
	require.NotContains(t, p.text("main"), "vision")
	who, err := chromedp.Run(p.ctx, chromedp.Evaluate[string](`fetch("/v1/whoami", {headers: {Authorization: "Bearer " + sessionStorage.getItem("bmaas.token")}}).then(r => r.json()).then(w => w.identity + " " + w.kind)`, chromedp.EvalAwaitPromise))
	require.NoError(t, err)
	require.Equal(t, "alice@example.com IDENTITY_KIND_USER", who)
}

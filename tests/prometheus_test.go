//go:build integration

package tests

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
	schedulerv1 "github.com/bmaas/bmaas/api/bmaas/scheduler/v1"
	"github.com/bmaas/bmaas/internal/testenv"
	"github.com/bmaas/bmaas/tests/harness"
)

// promDir holds the shipped Prometheus rules and configuration.
var promDir = filepath.Join("..", "deploy", "prometheus")

// prometheusTool finds Debian's prometheus or promtool; without it the
// test is skipped, except in CI, which installs it.
func prometheusTool(t *testing.T, name string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s not found; .ci/run installs it (apt-get install prometheus)", name)
	}
	t.Skipf("%s not found (apt-get install prometheus)", name)
	return ""
}

// forLine matches the `for:` duration of a rule in the rules file.
var forLine = regexp.MustCompile(`(?m)^(\s+for:\s*)\S+\s*$`)

// shortenFor returns the rules with every `for:` set to d, so that a
// test sees in seconds what takes minutes in production. Expressions,
// thresholds and labels stay as shipped.
func shortenFor(t *testing.T, rules []byte, d string) []byte {
	t.Helper()
	out := forLine.ReplaceAll(rules, []byte("${1}"+d))
	require.Equal(t, len(forLine.FindAll(rules, -1)), strings.Count(string(out), "for: "+d), "every rule's for is shortened")
	return out
}

// promServer is a running Prometheus.
type promServer struct {
	t    *testing.T
	base string
}

// startPrometheus runs Debian's prometheus on a free port with a fresh
// storage directory, a 1s scrape and evaluation interval, scraping
// targets under the job name "bmaas" and evaluating rules. It is killed
// when the test ends.
func startPrometheus(t *testing.T, bin string, rules []byte, targets ...string) *promServer {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "bmaas-rules.yml"), rules, 0o644))
	quoted := make([]string, len(targets))
	for i, tg := range targets {
		quoted[i] = fmt.Sprintf("%q", tg)
	}
	cfg := fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 900ms
  evaluation_interval: 1s
rule_files:
  - bmaas-rules.yml
scrape_configs:
  - job_name: bmaas
    metrics_path: /metrics
    static_configs:
      - targets: [%s]
`, strings.Join(quoted, ", "))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(cfg), 0o644))
	addr := harness.FreeAddr(t)
	out := &testenv.Buffer{}
	cmd := exec.Command(bin, "--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"), "--web.listen-address="+addr, "--log.level=warn")
	cmd.Stdout, cmd.Stderr = out, out
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("prometheus output:\n%s", out.String())
		}
	})
	p := &promServer{t: t, base: "http://" + addr}
	eventually(t, 15*time.Second, "prometheus ready", func() bool {
		resp, err := http.Get(p.base + "/-/ready")
		if err != nil {
			return false
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return p
}

// get decodes the data of a successful answer of Prometheus's API.
func (p *promServer) get(path string, data any) {
	p.t.Helper()
	resp, err := http.Get(p.base + path)
	require.NoError(p.t, err)
	defer resp.Body.Close()
	var body struct {
		Status string          `json:"status"`
		Error  string          `json:"error"`
		Data   json.RawMessage `json:"data"`
	}
	require.NoError(p.t, json.NewDecoder(resp.Body).Decode(&body))
	require.Equal(p.t, "success", body.Status, "%s: %s", path, body.Error)
	require.NoError(p.t, json.Unmarshal(body.Data, data))
}

// promSample is one series of an instant query's answer.
type promSample struct {
	Metric map[string]string `json:"metric"`
	Value  [2]any            `json:"value"`
}

// query evaluates an instant PromQL query.
func (p *promServer) query(q string) []promSample {
	p.t.Helper()
	var data struct {
		Result []promSample `json:"result"`
	}
	p.get("/api/v1/query?query="+url.QueryEscape(q), &data)
	return data.Result
}

// promAlert is an alert as /api/v1/alerts lists it.
type promAlert struct {
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	State       string            `json:"state"`
}

// firing returns the firing alerts named name.
func (p *promServer) firing(name string) []promAlert {
	p.t.Helper()
	var data struct {
		Alerts []promAlert `json:"alerts"`
	}
	p.get("/api/v1/alerts", &data)
	var out []promAlert
	for _, a := range data.Alerts {
		if a.Labels["alertname"] == name && a.State == "firing" {
			out = append(out, a)
		}
	}
	return out
}

// failJob submits a process job whose command does not exist and waits
// for it to fail.
func failJob(t *testing.T, sc schedulerv1.SchedulerServiceClient, model string) {
	t.Helper()
	sub, err := sc.SubmitJob(t.Context(), &schedulerv1.SubmitJobRequest{Spec: &schedulerv1.JobSpec{Model: model,
		Runtime: &schedulerv1.JobSpec_Process{Process: &schedulerv1.ProcessRuntime{Command: "no-such-command-bmaas"}}}})
	require.NoError(t, err)
	job := waitJob(t, sc, sub.Job.Id, 30*time.Second)
	require.Equal(t, schedulerv1.JobState_JOB_STATE_FAILED, job.State, "reason: %s", job.Reason)
}

// TestPrometheusEvaluatesShippedRules: the shipped rules pass promtool's
// check and their unit tests; a real Prometheus scrapes a cluster's HTTP
// edge (bmaas series arrive under the job "bmaas") and evaluates the
// shipped rules, with `for` shortened to 1s: BmaasTargetDown fires for a
// second target that does not answer, and not for the cluster; real
// failed jobs make BmaasJobsFailing fire.
func TestPrometheusEvaluatesShippedRules(t *testing.T) {
	t.Parallel()
	promtool := prometheusTool(t, "promtool")
	prom := prometheusTool(t, "prometheus")
	for _, args := range [][]string{{"check", "rules", "bmaas-rules.yml"}, {"test", "rules", "bmaas-rules.test.yml"}} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = promDir
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "promtool %s:\n%s", strings.Join(args, " "), out)
	}

	// Prometheus starts first, scraping the edge's address chosen
	// beforehand: its first scrape comes about 5s after it is ready (it
	// applies new targets on a 5s tick), which overlaps the cluster's
	// start.
	rules, err := os.ReadFile(filepath.Join(promDir, "bmaas-rules.yml"))
	require.NoError(t, err)
	edge := harness.FreeAddr(t)
	dead := harness.FreeAddr(t) // nothing listens there
	require.NotEqual(t, edge, dead)
	p := startPrometheus(t, prom, shortenFor(t, rules, "1s"), edge, dead)
	cfg := harness.DefaultConfig(t)
	cfg.HTTPAddr = edge
	c := harness.StartConfig(t, cfg)
	require.Equal(t, edge, c.Addrs.HTTP)

	// The cluster's own series are scraped: it has a scheduler leader.
	eventually(t, 15*time.Second, "bmaas_scheduler_leader scraped from the cluster", func() bool {
		r := p.query(fmt.Sprintf(`bmaas_scheduler_leader{job="bmaas",instance=%q}`, edge))
		return len(r) == 1 && r[0].Value[1] == "1"
	})

	// The target that does not answer fires BmaasTargetDown, named in its
	// summary; the cluster, once it answers, does not (it may have been
	// down while it started).
	var down []promAlert
	eventually(t, 15*time.Second, "BmaasTargetDown firing for the dead target alone", func() bool {
		down = p.firing("BmaasTargetDown")
		return len(down) == 1 && down[0].Labels["instance"] == dead
	})
	require.Equal(t, "critical", down[0].Labels["severity"])
	require.Equal(t, "bmaas process "+dead+" is down", down[0].Annotations["summary"])
	require.Empty(t, p.firing("BmaasSchedulerNoLeader"))

	// Jobs that fail for real: the first creates the failed series (a
	// counter's first sample is no increase), three more make the
	// threshold of the rule.
	ctx := t.Context()
	_, err = c.Registry.CreateModel(ctx, &registryv1.CreateModelRequest{Model: &registryv1.Model{Name: "prom"}})
	require.NoError(t, err)
	sc := schedulerv1.NewSchedulerServiceClient(c.Conn)
	failJob(t, sc, "prom")
	failed := fmt.Sprintf(`bmaas_scheduler_job_transitions_total{job="bmaas",instance=%q,state="failed"}`, edge)
	eventually(t, 10*time.Second, "the first failed job scraped", func() bool {
		r := p.query(failed)
		return len(r) == 1 && r[0].Value[1] == "1"
	})
	for range 3 {
		failJob(t, sc, "prom")
	}
	var jobs []promAlert
	eventually(t, 15*time.Second, "BmaasJobsFailing firing", func() bool {
		jobs = p.firing("BmaasJobsFailing")
		return len(jobs) > 0
	})
	require.Equal(t, "bmaas", jobs[0].Labels["job"])
	require.Equal(t, "warning", jobs[0].Labels["severity"])
	require.Equal(t, "100% of bmaas jobs fail", jobs[0].Annotations["summary"])
}

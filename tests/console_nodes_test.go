//go:build integration

package tests

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	evaluatorv1 "github.com/bmaas/bmaas/api/bmaas/evaluator/v1"
	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
	schedulerv1 "github.com/bmaas/bmaas/api/bmaas/scheduler/v1"
	"github.com/bmaas/bmaas/internal/app"
	"github.com/bmaas/bmaas/tests/harness"
)

const gib = float64(1 << 30)

// nodeUsage reads one node's samples of the last hour over REST, as the
// nodes page reads them.
func nodeUsage(t *testing.T, c *harness.Cluster, node string) []*evaluatorv1.NodeUsage {
	t.Helper()
	var out []*evaluatorv1.NodeUsage
	token := ""
	since := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339Nano)
	for {
		var r evaluatorv1.ListNodeUsageResponse
		restGet(t, c, fmt.Sprintf("/v1/node-usage?node=%s&since=%s&page_size=1000&page_token=%s",
			url.QueryEscape(node), url.QueryEscape(since), url.QueryEscape(token)), &r)
		out = append(out, r.Samples...)
		if token = r.NextPageToken; token == "" {
			return out
		}
	}
}

// usageCharts is what each chart of a node should hold for its samples,
// as nodes.js builds it: CPUs, GiB and percent over time.
func usageCharts(ss []*evaluatorv1.NodeUsage) map[string]series {
	out := map[string]series{"cpu": {}, "memory": {}, "gpu-util": {}, "gpu-memory": {}}
	put := func(chart, label string, x, y float64) {
		if out[chart][label] == nil {
			out[chart][label] = map[float64]float64{}
		}
		out[chart][label][x] = y
	}
	for _, s := range ss {
		x := at(s.Time)
		put("cpu", "allocated", x, float64(s.AllocatedCpuMillis)/1000)
		put("cpu", "capacity", x, float64(s.CpuMillis)/1000)
		put("memory", "allocated", x, float64(s.AllocatedMemoryBytes)/gib)
		put("memory", "capacity", x, float64(s.MemoryBytes)/gib)
		for _, g := range s.Gpus {
			put("gpu-util", fmt.Sprintf("GPU %d", g.Index), x, float64(g.UtilizationPercent))
			put("gpu-memory", fmt.Sprintf("GPU %d used", g.Index), x, float64(g.UsedMemoryBytes)/gib)
			put("gpu-memory", fmt.Sprintf("GPU %d allocated", g.Index), x, float64(g.AllocatedMemoryBytes)/gib)
		}
	}
	return out
}

// nodeChartID is the DOM id of a node's chart, as charts.js's chartId
// makes it.
func nodeChartID(node, key string) string {
	return "chart-" + regexp.MustCompile(`[^a-z0-9_-]+`).ReplaceAllString(strings.ToLower("node-"+node+"-"+key), "-")
}

// requireDrawn checks that every point a chart draws is the API's for
// its sample, and that the chart has every sample up to its last one.
func requireDrawn(t *testing.T, chart string, got plotted, want series) {
	t.Helper()
	drawn := got.points()
	require.Equal(t, len(want), len(drawn), "%s: the series %v, want %v", chart, keys(drawn), keys(want))
	last := got.X[len(got.X)-1]
	for label, pts := range want {
		require.Contains(t, drawn, label, chart)
		for x, y := range pts {
			if x > last {
				continue
			}
			require.Contains(t, drawn[label], x, "%s %s: the sample at %v is missing", chart, label, x)
			require.InDelta(t, y, drawn[label][x], 1e-9, "%s %s at %v", chart, label, x)
		}
		for x := range drawn[label] {
			require.Contains(t, pts, x, "%s %s: a point at %v that the API does not have", chart, label, x)
		}
	}
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestConsoleNodeUsage: with node use recorded every 500 ms, a job that
// holds 2 CPUs, 3 GiB and a GPU shows on the nodes page as a step in the
// node's allocated CPU, memory and GPU memory (each chart what the API
// says), the charts grow in place as samples land, and the step comes
// down when the job is cancelled.
func TestConsoleNodeUsage(t *testing.T) {
	t.Parallel()
	chromium(t)
	c := harness.Start(t, func(cfg *app.Config) {
		cfg.Evaluator.NodeUsageInterval = 500 * time.Millisecond
		cfg.TrainerAgent.FakeGPUs = 2
		cfg.TrainerAgent.FakeGPUMemory = 24 << 30
		cfg.TrainerAgent.CPUMillis = 8000
		cfg.TrainerAgent.MemoryBytes = 16 << 30
	})
	ctx := t.Context()
	sc := schedulerv1.NewSchedulerServiceClient(c.Conn)
	nodes, err := sc.ListNodes(ctx, &schedulerv1.ListNodesRequest{})
	require.NoError(t, err)
	require.Len(t, nodes.Nodes, 1)
	node := nodes.Nodes[0].Name

	// A few idle samples, then the job.
	eventually(t, 30*time.Second, "idle samples", func() bool { return len(nodeUsage(t, c, node)) >= 3 })
	_, err = c.Registry.CreateModel(ctx, &registryv1.CreateModelRequest{Model: &registryv1.Model{Name: "usage"}})
	require.NoError(t, err)
	sub, err := sc.SubmitJob(ctx, &schedulerv1.SubmitJobRequest{Spec: &schedulerv1.JobSpec{Model: "usage",
		Resources: &schedulerv1.Resources{CpuMillis: 2000, MemoryBytes: 3 << 30, Gpus: 1},
		Runtime: &schedulerv1.JobSpec_Process{Process: &schedulerv1.ProcessRuntime{
			Command: "sleep", Args: []string{"60"}}}}})
	require.NoError(t, err)
	jid := sub.Job.Id
	waitJobState(t, sc, jid, schedulerv1.JobState_JOB_STATE_RUNNING)
	held := func(ss []*evaluatorv1.NodeUsage) bool {
		return len(ss) > 0 && ss[len(ss)-1].AllocatedCpuMillis == 2000
	}
	eventually(t, 30*time.Second, "a sample with the job's allocation", func() bool { return held(nodeUsage(t, c, node)) })

	p := openConsole(t, c)
	p.run(chromedp.Navigate(c.HTTP + "/ui/#/nodes"))
	p.waitText("#nodes", node, "2 / 8")
	p.waitText("#node-usage", node, "samples")
	cpuID := nodeChartID(node, "cpu")
	got := p.waitChart(cpuID, "the job's 2 CPUs drawn", func(g plotted) bool {
		y := g.Series[0].Y
		return len(y) > 0 && y[len(y)-1] != nil && *y[len(y)-1] == 2
	})
	first := len(got.X)

	// Each chart holds what the API says, checked against one read that
	// covers it (the page may have drawn again since).
	want := usageCharts(nodeUsage(t, c, node))
	for key, chart := range want {
		g, ok := p.chart(nodeChartID(node, key))
		require.True(t, ok, "chart %s drawn", key)
		requireDrawn(t, key, g, chart)
	}
	gm, _ := p.chart(nodeChartID(node, "gpu-memory"))
	last := len(gm.X) - 1
	alloc := map[string]float64{}
	for _, s := range gm.Series {
		if s.Y[last] != nil {
			alloc[s.Label] = *s.Y[last]
		}
	}
	require.Equal(t, 24.0, alloc["GPU 0 allocated"]+alloc["GPU 1 allocated"], "one whole GPU of 24 GiB allocated: %v", alloc)
	mem, _ := p.chart(nodeChartID(node, "memory"))
	require.Equal(t, 3.0, *mem.Series[0].Y[len(mem.X)-1], "3 GiB allocated")
	require.Equal(t, 16.0, *mem.Series[1].Y[len(mem.X)-1], "16 GiB capacity")
	p.screenshot("nodes-usage")

	// Live: the same chart grows as samples land, and the allocation
	// comes down when the job ends.
	p.eval(`document.getElementById(` + fmt.Sprintf("%q", cpuID) + `).dataset.seen = "kept", ""`)
	p.waitChart(cpuID, "more samples drawn in place", func(g plotted) bool { return len(g.X) > first })
	_, err = sc.CancelJob(ctx, &schedulerv1.CancelJobRequest{Id: jid, Reason: "the test is done with it"})
	require.NoError(t, err)
	require.Equal(t, schedulerv1.JobState_JOB_STATE_CANCELLED, waitJob(t, sc, jid, time.Minute).State)
	p.waitChart(cpuID, "the allocation released", func(g plotted) bool {
		y := g.Series[0].Y
		return len(y) > 0 && y[len(y)-1] != nil && *y[len(y)-1] == 0
	})
	require.Equal(t, "kept", p.eval(`document.getElementById(`+fmt.Sprintf("%q", cpuID)+`).dataset.seen || ""`),
		"the page redraws the same chart, not a new one")
	requireDrawn(t, "cpu after the job", func() plotted { g, _ := p.chart(cpuID); return g }(), usageCharts(nodeUsage(t, c, node))["cpu"])

	// One node's page and a range.
	p.route("#/nodes?range=15m&node=" + url.QueryEscape(node))
	p.waitText("#node-usage", node, "all nodes")
	p.route("#/nodes?node=nope")
	p.waitText("#node-usage", "No node named nope.")
}

// Package console measures the console in headless Chromium against a
// registry of 1,000 models and 10,000 versions: the first paint of the
// models page and of the page of a model with 1,009 versions, and how
// long a model (or version) created through the API takes to show on
// the open page (the events stream). The console of an earlier commit
// (BMAAS_BENCH_CONSOLE_BEFORE, a git revision) runs in the same run on
// the same cluster, for a before and after.
//
//	go test -run '^$' -bench . -benchtime 1x -timeout 30m ./bench/console/
package console

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"testing"
	"time"

	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
	"github.com/bmaas/bmaas/tests/harness"
	"github.com/bmaas/bmaas/web"
)

const (
	// loads is how many times each page is loaded afresh.
	loads = 5
	// updates is how many changes each update-latency figure times.
	updates = 10
)

// arm is one console under measurement.
type arm struct {
	name  string
	files fs.FS
}

// arms are the console of this tree and, when BMAAS_BENCH_CONSOLE_BEFORE
// names a revision, the console of that revision.
func arms(b *testing.B) []arm {
	b.Helper()
	out := []arm{}
	if rev := os.Getenv("BMAAS_BENCH_CONSOLE_BEFORE"); rev != "" {
		files, err := gitConsole(b, rev)
		if err != nil {
			b.Fatalf("BMAAS_BENCH_CONSOLE_BEFORE=%s: %v", rev, err)
		}
		out = append(out, arm{"before", files})
	}
	return append(out, arm{"after", web.FS()})
}

func BenchmarkConsole(b *testing.B) {
	chromium(b)
	c := harness.Start(b)
	st := seed(b, c)
	b.Logf("seed: %d models in %v, %d versions in %v (%d parallel clients, %.0f versions/s)",
		models, st.models.Round(time.Millisecond), versions, st.versions.Round(time.Millisecond), workers,
		float64(versions)/st.versions.Seconds())
	br := openBrowser(b)
	for _, a := range arms(b) {
		files, err := withProbe(a.files)
		if err != nil {
			b.Fatal(err)
		}
		url := front(b, files, c.HTTP)
		b.Run(a.name, func(b *testing.B) {
			br.b = b
			measure(b, br, c, url, a.name)
		})
	}
}

// measure loads the pages afresh, then times updates on open pages.
func measure(b *testing.B, br *browser, c *harness.Cluster, url, name string) {
	models := pageLoads(br, url+"/ui/#/models", "#models tbody tr")
	b.Logf("models page (%d models): %s", models.n, models)
	big := pageLoads(br, url+"/ui/#/models/"+bigModel, "#versions tbody tr")
	b.Logf("model page (%d versions): %s", bigVersions, big)
	small := pageLoads(br, url+"/ui/#/models/"+modelName(1), "#versions tbody tr")
	b.Logf("model page (9 versions): %s", small)

	br.load(url+"/ui/#/models", "#models tbody tr")
	br.waitLive()
	created := modelUpdates(b, br, c, name)
	b.Logf("a created model shows on the models page after: %s", created)

	br.load(url+"/ui/#/models/"+bigModel, "#versions tbody tr")
	br.waitLive()
	uploaded := versionUpdates(b, br, c)
	b.Logf("an uploaded version shows on the page of %s after: %s", bigModel, uploaded)

	b.ReportMetric(models.painted, "models-paint-ms")
	b.ReportMetric(models.bytes/1e3, "models-api-kB")
	b.ReportMetric(big.painted, "model-paint-ms")
	b.ReportMetric(big.bytes/1e3, "model-api-kB")
	b.ReportMetric(created.p50, "model-update-ms")
	b.ReportMetric(uploaded.p50, "version-update-ms")
	b.ReportMetric(0, "ns/op")
}

// loadStats are the medians of loads of one page.
type loadStats struct {
	dom, painted, apiEnd, bytes float64
	calls, n                    int
}

func (s loadStats) String() string {
	return fmt.Sprintf("rendered %.0f ms, painted %.0f ms after the navigation's start (last API answer at %.0f ms; %d calls, %.0f kB); medians of %d loads",
		s.dom, s.painted, s.apiEnd, s.calls, s.bytes/1e3, loads)
}

// pageLoads loads u afresh loads times and returns the medians.
func pageLoads(br *browser, u, sel string) loadStats {
	var dom, painted, end, bytes []float64
	var calls int
	for range loads {
		p := br.load(u, sel)
		a := br.api()
		dom, painted = append(dom, p.DOM), append(painted, p.Painted)
		end, bytes = append(end, a.End), append(bytes, a.Bytes)
		calls = a.Calls
	}
	var n int
	br.eval(`document.querySelectorAll(`+quote(sel)+`).length`, &n)
	return loadStats{dom: median(dom), painted: median(painted), apiEnd: median(end), bytes: median(bytes), calls: calls, n: n}
}

// latency is the spread of update latencies in milliseconds.
type latency struct{ p50, max float64 }

func (l latency) String() string {
	return fmt.Sprintf("p50 %.0f ms, max %.0f ms of %d (from the call to the row in the DOM)", l.p50, l.max, updates)
}

// modelUpdates creates models on the open models page and times each
// until its row is in the DOM; it deletes them afterwards, so each arm
// sees the same registry.
func modelUpdates(b *testing.B, br *browser, c *harness.Cluster, name string) latency {
	ctx := context.Background()
	var ms []float64
	for i := range updates {
		m := fmt.Sprintf("new-%s-%02d", name, i)
		sel := fmt.Sprintf(`#models a[href="#/models/%s"]`, m)
		br.expect(sel)
		start := time.Now()
		if _, err := c.Registry.CreateModel(ctx, &registryv1.CreateModelRequest{Model: &registryv1.Model{Name: m}}); err != nil {
			b.Fatal(err)
		}
		ms = append(ms, br.wait(sel).Epoch-float64(start.UnixMicro())/1e3)
		time.Sleep(300 * time.Millisecond)
	}
	for i := range updates {
		if _, err := c.Registry.DeleteModel(ctx, &registryv1.DeleteModelRequest{Name: fmt.Sprintf("new-%s-%02d", name, i)}); err != nil {
			b.Fatal(err)
		}
	}
	return spread(ms)
}

// versionUpdates uploads versions of the big model on its open page and
// times each until its row is in the DOM; it deletes them afterwards.
func versionUpdates(b *testing.B, br *browser, c *harness.Cluster) latency {
	ctx := context.Background()
	var ms []float64
	var made []int64
	for range updates {
		m, err := c.Registry.GetModel(ctx, &registryv1.GetModelRequest{Name: bigModel})
		if err != nil {
			b.Fatal(err)
		}
		v := m.Model.LatestVersion + 1
		sel := fmt.Sprintf(`#versions tr[data-version="%d"]`, v)
		br.expect(sel)
		start := time.Now()
		if err := uploadVersion(ctx, c, bigModel, int(v)); err != nil {
			b.Fatal(err)
		}
		ms = append(ms, br.wait(sel).Epoch-float64(start.UnixMicro())/1e3)
		made = append(made, v)
		time.Sleep(300 * time.Millisecond)
	}
	for _, v := range made {
		if _, err := c.Registry.DeleteModelVersion(ctx, &registryv1.DeleteModelVersionRequest{Model: bigModel, Version: fmt.Sprint(v)}); err != nil {
			b.Fatal(err)
		}
	}
	return spread(ms)
}

func spread(ms []float64) latency {
	return latency{p50: median(ms), max: slices.Max(ms)}
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

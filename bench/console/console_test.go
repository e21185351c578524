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
	renders, kB := churn(b, br, c)
	b.Logf("while %d versions of other models are uploaded, the page of %s draws %d times and reads %.0f kB", churnVersions, bigModel, renders, kB)

	b.ReportMetric(models.painted, "models-paint-ms")
	b.ReportMetric(models.bytes/1e3, "models-api-kB")
	b.ReportMetric(big.painted, "model-paint-ms")
	b.ReportMetric(big.bytes/1e3, "model-api-kB")
	b.ReportMetric(created.painted, "model-update-ms")
	b.ReportMetric(uploaded.painted, "version-update-ms")
	b.ReportMetric(float64(renders), "churn-renders")
	b.ReportMetric(0, "ns/op")
}

// loadStats are the medians of loads of one page.
type loadStats struct {
	dom, painted, apiEnd, bytes float64
	calls, n                    int
	slowest                     string
}

func (s loadStats) String() string {
	return fmt.Sprintf("rendered %.0f ms, painted %.0f ms after the navigation's start (last API answer at %.0f ms; %d calls, %.0f kB; slowest %s); medians of %d loads",
		s.dom, s.painted, s.apiEnd, s.calls, s.bytes/1e3, s.slowest, loads)
}

// pageLoads loads u afresh loads times and returns the medians.
func pageLoads(br *browser, u, sel string) loadStats {
	var dom, painted, end, bytes []float64
	var calls int
	var slowest string
	for range loads {
		p := br.load(u, sel)
		a := br.api()
		dom, painted = append(dom, p.DOM), append(painted, p.Painted)
		end, bytes = append(end, a.End), append(bytes, a.Bytes)
		calls, slowest = a.Calls, fmt.Sprintf("%s %.0f ms", a.Slowest, a.SlowestMs)
	}
	var n int
	br.eval(`document.querySelectorAll(`+quote(sel)+`).length`, &n)
	return loadStats{dom: median(dom), painted: median(painted), apiEnd: median(end), bytes: median(bytes), calls: calls, n: n, slowest: slowest}
}

// latency is the spread of update latencies in milliseconds: to the row
// in the DOM, and to the frame after it (painted).
type latency struct{ p50, max, painted float64 }

func (l latency) String() string {
	return fmt.Sprintf("p50 %.0f ms (max %.0f) from the call to the row in the DOM, p50 %.0f ms to its paint; %d changes", l.p50, l.max, l.painted, updates)
}

// modelUpdates creates models on the open models page and times each
// until its row is in the DOM; it deletes them afterwards, so each arm
// sees the same registry.
func modelUpdates(b *testing.B, br *browser, c *harness.Cluster, name string) latency {
	ctx := context.Background()
	var ms, painted []float64
	for i := range updates {
		// Named to sort first, so that the row is on the first page.
		m := fmt.Sprintf("a-new-%s-%02d", name, i)
		sel := fmt.Sprintf(`#models a[href="#/models/%s"]`, m)
		br.expect(sel)
		start := time.Now()
		if _, err := c.Registry.CreateModel(ctx, &registryv1.CreateModelRequest{Model: &registryv1.Model{Name: m}}); err != nil {
			b.Fatal(err)
		}
		ms, painted = took(ms, painted, br.wait(sel), start)
		time.Sleep(300 * time.Millisecond)
	}
	for i := range updates {
		if _, err := c.Registry.DeleteModel(ctx, &registryv1.DeleteModelRequest{Name: fmt.Sprintf("a-new-%s-%02d", name, i)}); err != nil {
			b.Fatal(err)
		}
	}
	return spread(ms, painted)
}

// versionUpdates uploads versions of the big model on its open page and
// times each until its row is in the DOM; it deletes them afterwards.
func versionUpdates(b *testing.B, br *browser, c *harness.Cluster) latency {
	ctx := context.Background()
	var ms, painted []float64
	var made []int64
	for i := range updates {
		// The newest version is the table's first row: the row that
		// replaces the current first one is the upload's.
		var first string
		br.eval(`document.querySelector('#versions tbody tr').dataset.version`, &first)
		sel := fmt.Sprintf(`#versions tbody tr:first-child:not([data-version="%s"])`, first)
		br.expect(sel)
		start := time.Now()
		v, err := uploadVersion(ctx, c, bigModel, bigVersions+i)
		if err != nil {
			b.Fatal(err)
		}
		ms, painted = took(ms, painted, br.wait(sel), start)
		made = append(made, v)
		time.Sleep(300 * time.Millisecond)
	}
	for _, v := range made {
		if _, err := c.Registry.DeleteModelVersion(ctx, &registryv1.DeleteModelVersionRequest{Model: bigModel, Version: fmt.Sprint(v)}); err != nil {
			b.Fatal(err)
		}
	}
	return spread(ms, painted)
}

// churnVersions are uploaded to other models while the page of the big
// model is open.
const churnVersions = 40

// churn uploads versions of other models, one after another, on the
// open page of the big model, and counts the page's draws and the bytes
// its REST calls read meanwhile: a page should not read its model again
// for another model's events. The versions are deleted afterwards.
func churn(b *testing.B, br *browser, c *harness.Cluster) (renders int, kB float64) {
	ctx := context.Background()
	time.Sleep(time.Second) // the redraw for the versions deleted before
	before, read := br.renders(), br.api().Bytes
	other := modelName(2)
	var made []int64
	for i := range churnVersions {
		v, err := uploadVersion(ctx, c, other, 10+i)
		if err != nil {
			b.Fatal(err)
		}
		made = append(made, v)
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(time.Second) // the last events' debounce and redraw
	renders, kB = br.renders()-before, (br.api().Bytes-read)/1e3
	for _, v := range made {
		if _, err := c.Registry.DeleteModelVersion(ctx, &registryv1.DeleteModelVersionRequest{Model: other, Version: fmt.Sprint(v)}); err != nil {
			b.Fatal(err)
		}
	}
	return renders, kB
}

// took appends the time from start to the row's DOM and to its paint.
func took(ms, painted []float64, p paint, start time.Time) ([]float64, []float64) {
	at := float64(start.UnixMicro()) / 1e3
	return append(ms, p.Epoch-at), append(painted, p.Epoch+p.Painted-p.DOM-at)
}

func spread(ms, painted []float64) latency {
	return latency{p50: median(ms), max: slices.Max(ms), painted: median(painted)}
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

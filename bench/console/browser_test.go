package console

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os/exec"
	"path"
	"slices"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/chromedp/chromedp"
)

// front serves a console's files under /ui/ and passes every other path
// (the REST API, the events stream) to the cluster's HTTP edge, so the
// page and its API share one origin as they do on the edge itself. Two
// fronts on one cluster compare two consoles on the same data.
func front(b *testing.B, files fs.FS, edge string) string {
	b.Helper()
	target, err := url.Parse(edge)
	if err != nil {
		b.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	static := http.StripPrefix("/ui", http.FileServerFS(files))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/ui/") {
			w.Header().Set("Cache-Control", "no-cache")
			static.ServeHTTP(w, r)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	b.Cleanup(func() {
		srv.CloseClientConnections() // the page's events stream
		srv.Close()
	})
	return srv.URL
}

// gitConsole reads web/static as it is at rev from the repository's
// history (the console before a change, for the same run as after it).
func gitConsole(b *testing.B, rev string) (fs.FS, error) {
	b.Helper()
	cmd := exec.Command("git", "archive", rev, "web/static")
	cmd.Dir = "../.."
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("git archive %s: %w: %s", rev, err, strings.TrimSpace(stderr.String()))
	}
	files := fstest.MapFS{}
	tr := tar.NewReader(bytes.NewReader(out))
	for {
		hd, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		if hd.Typeflag != tar.TypeReg {
			continue
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			return nil, err
		}
		files[strings.TrimPrefix(path.Clean(hd.Name), "web/static/")] = &fstest.MapFile{Data: data, Mode: 0o644}
	}
	return files, nil
}

// probe runs in the console before its own scripts (withProbe). For each
// selector in __bench.want (at first the page's ?probe= values) it records when a matching element first enters the DOM
// (performance.now(), from the navigation's start; epoch, in Unix ms)
// and when the frame after the one that drew it begins (painted).
const probe = `(() => {
  performance.setResourceTimingBufferSize(100000);
  const b = window.__bench = { want: new Set(new URLSearchParams(location.search).getAll('probe')), seen: {}, epoch: {}, painted: {} };
  b.expect = (sel) => { delete b.seen[sel]; delete b.epoch[sel]; delete b.painted[sel]; b.want.add(sel); check(); return ''; };
  const check = () => {
    for (const sel of b.want) {
      if (!document.querySelector(sel)) continue;
      b.want.delete(sel);
      const t = performance.now();
      b.seen[sel] = t;
      b.epoch[sel] = performance.timeOrigin + t;
      requestAnimationFrame(() => requestAnimationFrame(() => { b.painted[sel] = performance.now(); }));
    }
  };
  new MutationObserver(check).observe(document, { childList: true, subtree: true });
})();`

// withProbe copies a console's files and loads the probe before its
// scripts, as the first script of index.html.
func withProbe(files fs.FS) (fs.FS, error) {
	out := fstest.MapFS{"bench-probe.js": &fstest.MapFile{Data: []byte(probe), Mode: 0o644}}
	err := fs.WalkDir(files, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := fs.ReadFile(files, p)
		if err != nil {
			return err
		}
		if p == "index.html" {
			const at = "<script "
			i := bytes.Index(data, []byte(at))
			if i < 0 {
				return fmt.Errorf("index.html has no script to load the probe before")
			}
			data = slices.Concat(data[:i], []byte(`<script src="bench-probe.js"></script>`+"\n"), data[i:])
		}
		out[p] = &fstest.MapFile{Data: data, Mode: 0o644}
		return nil
	})
	return out, err
}

// browser is a headless Chromium tab.
type browser struct {
	b   *testing.B
	ctx context.Context
}

func chromium(b *testing.B) string {
	b.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	b.Skip("chromium not found (apt-get install chromium)")
	return ""
}

func openBrowser(b *testing.B) *browser {
	b.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium(b)), chromedp.NoSandbox, chromedp.DisableGPU, chromedp.WindowSize(1400, 1000),
		chromedp.UserDataDir(b.TempDir()))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx)
	b.Cleanup(func() { cancelTab(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil {
		b.Fatalf("start chromium: %v", err)
	}
	return &browser{b: b, ctx: ctx}
}

// eval evaluates js and decodes its JSON value into out.
func (p *browser) eval(js string, out any) {
	p.b.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, time.Minute)
	defer cancel()
	raw, err := chromedp.Run(ctx, chromedp.Evaluate[string](`JSON.stringify(`+js+`)`))
	if err != nil {
		p.b.Fatalf("%s: %v", js, err)
	}
	if out != nil {
		if err := json.Unmarshal([]byte(raw), out); err != nil {
			p.b.Fatalf("%s: %v (%s)", js, err, raw)
		}
	}
}

// load opens u as a new document (from about:blank, so that a change of
// the hash alone still loads the page afresh), with sel in its query for
// the probe, and waits until sel is in the DOM and drawn.
func (p *browser) load(u, sel string) paint {
	p.b.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, time.Minute)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		p.b.Fatal(err)
	}
	v, err := url.Parse(u)
	if err != nil {
		p.b.Fatal(err)
	}
	v.RawQuery = url.Values{"probe": {sel}}.Encode()
	if err := chromedp.Do(ctx, chromedp.Navigate(v.String())); err != nil {
		p.b.Fatal(err)
	}
	return p.wait(sel)
}

// paint is when an element appeared: dom and painted from the start of
// the navigation, epoch in Unix milliseconds.
type paint struct {
	DOM     float64 `json:"dom"`
	Painted float64 `json:"painted"`
	Epoch   float64 `json:"epoch"`
}

// wait polls until the probe has seen sel appear and drawn it.
func (p *browser) wait(sel string) paint {
	p.b.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	q := strconv.Quote(sel)
	for {
		var got *paint
		p.eval(`(window.__bench && __bench.painted[`+q+`] !== undefined) ? { dom: __bench.seen[`+q+`], painted: __bench.painted[`+q+`], epoch: __bench.epoch[`+q+`] } : null`, &got)
		if got != nil {
			return *got
		}
		if time.Now().After(deadline) {
			var main string
			p.eval(`(document.getElementById('main') || {}).innerText || ''`, &main)
			p.b.Fatalf("%s did not appear within 2 minutes; the page shows:\n%.2000s", sel, main)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// apiUse sums the page's REST calls (not the events stream): how many,
// the bytes of their bodies, when the last one ended, and the slowest.
type apiUse struct {
	Calls     int     `json:"calls"`
	Bytes     float64 `json:"bytes"`
	End       float64 `json:"end"`
	Slowest   string  `json:"slowest"`
	SlowestMs float64 `json:"slowestMs"`
}

func (p *browser) api() apiUse {
	p.b.Helper()
	var u apiUse
	p.eval(`performance.getEntriesByType('resource').filter((e) => e.name.includes('/v1/') && !e.name.includes('events:watch'))
		.reduce((a, e) => ({ calls: a.calls + 1, bytes: a.bytes + e.decodedBodySize, end: Math.max(a.end, e.responseEnd),
			...(e.duration > a.slowestMs ? { slowest: new URL(e.name).pathname, slowestMs: e.duration } : { slowest: a.slowest, slowestMs: a.slowestMs }) }),
		{ calls: 0, bytes: 0, end: 0, slowest: '', slowestMs: 0 })`, &u)
	return u
}

// expect arms the probe for sel on the open page.
func (p *browser) expect(sel string) {
	p.b.Helper()
	p.eval(`__bench.expect(`+quote(sel)+`)`, nil)
}

// waitLive waits until the page's events stream is open.
func (p *browser) waitLive() {
	p.b.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var state string
		p.eval(`document.documentElement.dataset.live || ''`, &state)
		if state == "open" {
			return
		}
		if time.Now().After(deadline) {
			p.b.Fatalf("the events stream is %q after 30s", state)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// renders is how many times the shell has drawn the view on screen.
func (p *browser) renders() int {
	p.b.Helper()
	var s string
	p.eval(`document.getElementById('main').dataset.renders || '0'`, &s)
	n, _ := strconv.Atoi(s)
	return n
}

func quote(s string) string { return strconv.Quote(s) }

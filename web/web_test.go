package web

import (
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"path"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestHandlerServesTheConsole(t *testing.T) {
	t.Parallel()
	mux := http.NewServeMux()
	mux.Handle("GET /ui/", Handler("/ui/"))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	for _, tc := range []struct {
		path, ctype, body string
		want              int
	}{
		{"/ui/", "text/html", `<script type="module" src="js/app.js">`, http.StatusOK},
		{"/ui/style.css", "text/css", ".badge", http.StatusOK},
		{"/ui/js/app.js", "text/javascript", "import", http.StatusOK},
		{"/ui/js/api.js", "text/javascript", "Authorization", http.StatusOK},
		{"/ui/js/charts.js", "text/javascript", "uPlot", http.StatusOK},
		{"/ui/js/live.js", "text/javascript", "/v1/events:watch", http.StatusOK},
		{"/ui/js/alerts.js", "text/javascript", "/v1/alert-rules", http.StatusOK},
		{"/ui/js/monitor.js", "text/javascript", "/monitoring", http.StatusOK},
		{"/ui/vendor/uplot/uPlot.iife.min.js", "text/javascript", "var uPlot=", http.StatusOK},
		{"/ui/vendor/uplot/uPlot.min.css", "text/css", ".uplot", http.StatusOK},
		{"/ui/vendor/uplot/LICENSE", "text/plain", "MIT License", http.StatusOK},
		{"/ui/js/", "", "", http.StatusNotFound},
		{"/ui/nope.js", "", "", http.StatusNotFound},
	} {
		resp, err := http.Get(srv.URL + tc.path)
		require.NoError(t, err)
		body, err := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		require.NoError(t, err)
		require.Equal(t, tc.want, resp.StatusCode, tc.path)
		if tc.want != http.StatusOK {
			continue
		}
		require.True(t, strings.HasPrefix(resp.Header.Get("Content-Type"), tc.ctype), "%s: %s", tc.path, resp.Header.Get("Content-Type"))
		require.Contains(t, string(body), tc.body, tc.path)
		require.Equal(t, "nosniff", resp.Header.Get("X-Content-Type-Options"), tc.path)
		require.Contains(t, resp.Header.Get("Content-Security-Policy"), "default-src 'self'", tc.path)
		require.Equal(t, "no-cache", resp.Header.Get("Cache-Control"), tc.path)
	}
}

// TestModulesResolve: every relative import of a module and every file
// index.html names exists, and nothing reaches outside the binary.
func TestModulesResolve(t *testing.T) {
	t.Parallel()
	files := FS()
	imports := regexp.MustCompile(`(?m)^(?:import|export)[^'"]*from '([^']+)'`)
	refs := regexp.MustCompile(`(?:src|href)="([^"#]+)"`)
	external := regexp.MustCompile(`https?://|//cdn|@import`)
	// Names that are no address: the SVG namespace, and the project's
	// address in a vendored file's license comment.
	names := regexp.MustCompile(`http://www\.w3\.org/2000/svg|^/\*! https://github\.com/[^ ]+ \(v[0-9.]+\) \*/`)
	n := 0
	err := fs.WalkDir(files, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := fs.ReadFile(files, p)
		require.NoError(t, err)
		src := string(data)
		var deps []string
		switch path.Ext(p) {
		case ".js":
			n++
			for _, m := range imports.FindAllStringSubmatch(src, -1) {
				deps = append(deps, m[1])
			}
		case ".html":
			for _, m := range refs.FindAllStringSubmatch(src, -1) {
				if !strings.HasPrefix(m[1], "data:") {
					deps = append(deps, m[1])
				}
			}
		}
		require.False(t, external.MatchString(names.ReplaceAllString(src, "")), "%s refers to something outside the binary", p)
		for _, dep := range deps {
			require.False(t, strings.HasPrefix(dep, "/") || strings.Contains(dep, "://"), "%s imports %s", p, dep)
			_, err := fs.Stat(files, path.Join(path.Dir(p), dep))
			require.NoError(t, err, "%s imports %s", p, dep)
		}
		return nil
	})
	require.NoError(t, err)
	require.GreaterOrEqual(t, n, 3, "the console's modules")
}

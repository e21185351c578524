package httpedge

import (
	"encoding/json"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func defaults(t *testing.T, args ...string) Config {
	t.Helper()
	var c Config
	fs := flag.NewFlagSet("", flag.ContinueOnError)
	c.RegisterFlags(fs)
	require.NoError(t, fs.Parse(args))
	return c
}

// echo answers 200 with the body it read, so a test sees what passed.
var echo = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	_, _ = w.Write(b)
})

func classify(r *http.Request) Kind {
	switch {
	case r.Method == http.MethodPut && strings.HasSuffix(r.URL.Path, "/artifact"):
		return Upload
	case strings.HasPrefix(r.URL.Path, "/v2/"):
		return Inference
	}
	return JSON
}

type req struct {
	method, url, ct, body string
	hdr                   map[string]string
	chunked               bool
}

func serve(t *testing.T, g *Guard, q req) *httptest.ResponseRecorder {
	t.Helper()
	var body io.Reader = strings.NewReader(q.body)
	if q.chunked {
		body = io.MultiReader(strings.NewReader(q.body)) // no length known: chunked
	}
	r := httptest.NewRequest(q.method, q.url, body)
	if q.chunked {
		r.ContentLength = -1
	}
	if !strings.HasPrefix(q.url, "http") {
		r.Host = "127.0.0.1:8080"
	}
	if q.ct != "" {
		r.Header.Set("Content-Type", q.ct)
	}
	for k, v := range q.hdr {
		if k == "Host" {
			r.Host = v
			continue
		}
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	g.Handler(echo).ServeHTTP(w, r)
	return w
}

func TestGuard(t *testing.T) {
	t.Parallel()
	g, err := New(defaults(t, "--http.allowed-hosts=bmaas.internal,.corp.example", "--http.max-body-bytes=2048"),
		Options{Names: []string{"gpu-07"}, Classify: classify})
	require.NoError(t, err)
	const job = `{"spec":{"process":{"command":"sh","args":["-c","id"]}}}`
	for _, tc := range []struct {
		name string
		req  req
		code int
		msg  string
	}{
		// Finding: a web page POSTed text/plain with any Origin and ran a job.
		{"cross-site text/plain", req{method: "POST", url: "http://127.0.0.1:8080/v1/jobs", ct: "text/plain", body: job,
			hdr: map[string]string{"Origin": "https://evil.example", "Host": "127.0.0.1:8080"}}, 403, "cross-site"},
		{"text/plain without origin", req{method: "POST", url: "/v1/jobs", ct: "text/plain", body: job}, 415, "text/plain"},
		{"form without body", req{method: "POST", url: "/v1/jobs/x:cancel", ct: "application/x-www-form-urlencoded"}, 415, "application/json"},
		{"multipart", req{method: "POST", url: "/v1/jobs", ct: "multipart/form-data; boundary=x", body: job}, 415, "multipart"},
		{"cross-site json", req{method: "POST", url: "http://localhost:8080/v1/jobs", ct: "application/json", body: job,
			hdr: map[string]string{"Origin": "http://localhost:3000", "Host": "localhost:8080"}}, 403, "--http.allowed-origins"},
		{"sec-fetch-site cross-site", req{method: "DELETE", url: "/v1/models/m",
			hdr: map[string]string{"Sec-Fetch-Site": "cross-site"}}, 403, "cross-site"},
		{"same-origin json", req{method: "POST", url: "http://127.0.0.1:8080/v1/jobs", ct: "application/json", body: job,
			hdr: map[string]string{"Origin": "http://127.0.0.1:8080", "Host": "127.0.0.1:8080", "Sec-Fetch-Site": "same-origin"}}, 200, job},
		{"curl json", req{method: "POST", url: "/v1/models", ct: "application/json; charset=utf-8", body: `{"name":"m"}`}, 200, `{"name":"m"}`},
		{"no body, no type", req{method: "POST", url: "/v1/jobs/x:cancel"}, 200, ""},
		{"json route without type", req{method: "POST", url: "/v1/models", body: `{}`}, 415, "Content-Type none"},
		{"json route with octet-stream", req{method: "PATCH", url: "/v1/models/m", ct: "application/octet-stream", body: `{}`}, 415, "application/json"},
		{"bad media type", req{method: "POST", url: "/v1/models", ct: "application/", body: `{}`}, 415, "Content-Type"},
		// Uploads keep their raw types; a form type is still refused.
		{"upload octet-stream", req{method: "PUT", url: "/v1/models/m/artifact", ct: "application/octet-stream", body: "raw"}, 200, "raw"},
		{"upload without type", req{method: "PUT", url: "/v1/models/m/artifact", body: "raw"}, 200, "raw"},
		{"upload text/plain", req{method: "PUT", url: "/v1/models/m/artifact", ct: "text/plain", body: "raw"}, 415, "text/plain"},
		// KServe v2: no type is fine, errors keep the protocol's shape.
		{"v2 without type", req{method: "POST", url: "/v2/models/m/infer", body: `{"inputs":[]}`}, 200, `{"inputs":[]}`},
		{"v2 text/plain", req{method: "POST", url: "/v2/models/m/infer", ct: "text/plain", body: `{}`}, 415, `"error"`},
		// DNS rebinding: only this server's names.
		{"rebound host", req{method: "GET", url: "/v1/models", hdr: map[string]string{"Host": "evil.example:8080"}}, 403, "--http.allowed-hosts"},
		{"localhost", req{method: "GET", url: "/v1/models", hdr: map[string]string{"Host": "localhost:8080"}}, 200, ""},
		{"ip literal", req{method: "GET", url: "/v1/models", hdr: map[string]string{"Host": "10.1.2.3:8080"}}, 200, ""},
		{"ipv6 literal", req{method: "GET", url: "/v1/models", hdr: map[string]string{"Host": "[::1]:8080"}}, 200, ""},
		{"node name", req{method: "GET", url: "/v1/models", hdr: map[string]string{"Host": "GPU-07:8080"}}, 200, ""},
		{"allowed host", req{method: "GET", url: "/v1/models", hdr: map[string]string{"Host": "bmaas.internal"}}, 200, ""},
		{"allowed domain", req{method: "GET", url: "/v1/models", hdr: map[string]string{"Host": "a.corp.example:443"}}, 200, ""},
		{"domain is not its suffix", req{method: "GET", url: "/v1/models", hdr: map[string]string{"Host": "evilcorp.example"}}, 403, "host"},
		// A closed CORS policy: preflights are refused.
		{"preflight", req{method: "OPTIONS", url: "/v1/jobs", hdr: map[string]string{"Origin": "https://evil.example",
			"Access-Control-Request-Method": "POST"}}, 403, "--http.allowed-origins"},
		{"bad utf-8 path", req{method: "GET", url: "/v1/models/%ff%fe"}, 400, "UTF-8"},
		{"bad utf-8 query", req{method: "GET", url: "/v1/models?page_token=%ff"}, 400, "UTF-8"},
		{"declared body over limit", req{method: "POST", url: "/v1/models", ct: "application/json", body: strings.Repeat(" ", 2049)}, 413, "--http.max-body-bytes"},
		{"chunked body over limit", req{method: "POST", url: "/v1/models", ct: "application/json", body: strings.Repeat(" ", 4096), chunked: true}, 413, "over 2048 bytes"},
		{"chunked body within limit", req{method: "POST", url: "/v1/models", ct: "application/json", body: `{"a":1}`, chunked: true}, 200, `{"a":1}`},
		{"upload over the json limit", req{method: "PUT", url: "/v1/models/m/artifact", body: strings.Repeat("x", 4096)}, 200, strings.Repeat("x", 4096)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := serve(t, g, tc.req)
			require.Equal(t, tc.code, w.Code, w.Body.String())
			require.Contains(t, w.Body.String(), tc.msg)
			if tc.code != 200 {
				var body map[string]any
				require.NoError(t, json.Unmarshal(w.Body.Bytes(), &body))
				if strings.HasPrefix(tc.req.url, "/v2/") {
					require.Contains(t, body, "error")
				} else {
					require.Contains(t, body, "code")
					require.Contains(t, body, "message")
				}
			}
		})
	}
}

func TestGuardAllowedOrigin(t *testing.T) {
	t.Parallel()
	const origin = "https://console.example.com"
	g, err := New(defaults(t, "--http.allowed-origins="+origin), Options{})
	require.NoError(t, err)

	w := serve(t, g, req{method: "OPTIONS", url: "/v1/jobs", hdr: map[string]string{"Origin": origin,
		"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization,content-type"}})
	require.Less(t, w.Code, 300)
	require.Equal(t, origin, w.Header().Get("Access-Control-Allow-Origin"))
	require.Contains(t, strings.ToLower(w.Header().Get("Access-Control-Allow-Headers")), "authorization")

	w = serve(t, g, req{method: "POST", url: "http://127.0.0.1:8080/v1/models", ct: "application/json", body: `{}`,
		hdr: map[string]string{"Origin": origin, "Host": "127.0.0.1:8080", "Sec-Fetch-Site": "cross-site"}})
	require.Equal(t, 200, w.Code, w.Body.String())
	require.Equal(t, origin, w.Header().Get("Access-Control-Allow-Origin"))

	// Another origin gets no CORS grant and its writes are refused.
	w = serve(t, g, req{method: "POST", url: "http://127.0.0.1:8080/v1/models", ct: "application/json", body: `{}`,
		hdr: map[string]string{"Origin": "https://evil.example", "Host": "127.0.0.1:8080"}})
	require.Equal(t, 403, w.Code)
	require.Empty(t, w.Header().Get("Access-Control-Allow-Origin"))
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		err  string
	}{
		{[]string{"--http.allowed-origins=console.example.com"}, "http.allowed-origins"},
		{[]string{"--http.allowed-origins=https://a.example/path"}, "http.allowed-origins"},
		{[]string{"--http.allowed-hosts=a b"}, "http.allowed-hosts"},
		{[]string{"--http.max-body-bytes=10"}, "http.max-body-bytes"},
		{[]string{"--http.idle-timeout=0s"}, "http.idle-timeout"},
	} {
		c := defaults(t, tc.args...)
		err := c.Validate()
		require.ErrorContains(t, err, tc.err, tc.args)
	}
	c := defaults(t)
	require.NoError(t, c.Validate())
}

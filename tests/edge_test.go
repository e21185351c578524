//go:build integration

package tests

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
	schedulerv1 "github.com/bmaas/bmaas/api/bmaas/scheduler/v1"
	"github.com/bmaas/bmaas/internal/app"
	"github.com/bmaas/bmaas/tests/harness"
)

// rawHTTP sends a request written by hand on a new connection and returns
// the status line and body of the answer, read within a bound.
func rawHTTP(t *testing.T, addr, request string) (string, string) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	require.NoError(t, err)
	defer conn.Close()
	require.NoError(t, conn.SetDeadline(time.Now().Add(10*time.Second)))
	_, err = io.WriteString(conn, request)
	require.NoError(t, err)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	require.NoError(t, err, "no answer: the server waits for the body")
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.Status, string(b)
}

func jobCount(t *testing.T, c *harness.Cluster) int {
	t.Helper()
	resp, err := schedulerv1.NewSchedulerServiceClient(c.Conn).ListJobs(t.Context(), &schedulerv1.ListJobsRequest{})
	require.NoError(t, err)
	return len(resp.Jobs)
}

// TestEdgeRefusesCrossSiteAndRebinding: a page on another site cannot
// submit a job through the user's browser, whatever type it sends, and a
// rebound DNS name cannot reach the API; curl-style JSON still works.
func TestEdgeRefusesCrossSiteAndRebinding(t *testing.T) {
	t.Parallel()
	c := harness.Start(t)
	addr := c.Addrs.HTTP
	_, err := c.Registry.CreateModel(t.Context(), &registryv1.CreateModelRequest{Model: &registryv1.Model{Name: "pwn"}})
	require.NoError(t, err)
	job := `{"name":"pwn","model":"pwn","process":{"command":"sh","args":["-c","id > /tmp/pwned"]}}`
	post := func(hdr string) string {
		st, body := rawHTTP(t, addr, "POST /v1/jobs HTTP/1.1\r\nHost: "+addr+"\r\n"+hdr+
			fmt.Sprintf("Content-Length: %d\r\nConnection: close\r\n\r\n", len(job))+job)
		return st + " " + body
	}
	require.Contains(t, post("Content-Type: text/plain\r\nOrigin: https://evil.example\r\n"), "403")
	require.Contains(t, post("Content-Type: text/plain\r\nSec-Fetch-Site: cross-site\r\n"), "403")
	require.Contains(t, post("Content-Type: application/json\r\nOrigin: https://evil.example\r\n"), "403")
	require.Contains(t, post("Content-Type: text/plain\r\n"), "415")
	require.Contains(t, post("Content-Type: application/x-www-form-urlencoded\r\n"), "415")
	st, body := rawHTTP(t, addr, "GET /v1/models HTTP/1.1\r\nHost: rebound.evil.example:8080\r\nConnection: close\r\n\r\n")
	require.Contains(t, st, "403", body)
	require.Contains(t, body, "--http.allowed-hosts")
	require.Equal(t, 0, jobCount(t, c), "a refused request created a job")

	// The same submission as a same-origin page or curl sends it.
	st, body = rawHTTP(t, addr, "POST /v1/jobs HTTP/1.1\r\nHost: "+addr+"\r\nContent-Type: application/json\r\n"+
		"Origin: "+c.HTTP+"\r\nSec-Fetch-Site: same-origin\r\n"+
		fmt.Sprintf("Content-Length: %d\r\nConnection: close\r\n\r\n", len(`{"name":"ok","builtin":{}}`))+`{"name":"ok","builtin":{}}`)
	require.NotContains(t, st, "403", body)
	require.NotContains(t, st, "415", body)
}

// TestEdgeBoundsBodiesAndConnections: a body over the limit is refused
// from its declared length without reading it (REST and KServe v2), a
// chunked one as soon as it passes the limit, malformed UTF-8 in a path
// is a 400, and idle connections are closed.
func TestEdgeBoundsBodiesAndConnections(t *testing.T) {
	t.Parallel()
	c := harness.Start(t, func(cfg *app.Config) {
		cfg.HTTP.IdleTimeout = 300 * time.Millisecond
		cfg.HTTP.ReadHeaderTimeout = 300 * time.Millisecond
	})
	addr := c.Addrs.HTTP
	head := func(method, path, typ string, length int64) string {
		return fmt.Sprintf("%s %s HTTP/1.1\r\nHost: %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n", method, path, addr, typ, length)
	}
	st, body := rawHTTP(t, addr, head("POST", "/v1/models", "application/json", 200<<20)+`{"name":"`)
	require.Contains(t, st, "413", body)
	require.Contains(t, body, "--http.max-body-bytes")
	st, body = rawHTTP(t, addr, head("POST", "/v2/models/m/infer", "application/json", 2<<30)+`{"inputs":`)
	require.Contains(t, st, "413", body)
	require.Contains(t, body, `"error"`)

	// Chunked: the server stops reading at the limit and answers.
	conn, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer conn.Close()
	require.NoError(t, conn.SetDeadline(time.Now().Add(20*time.Second)))
	_, err = fmt.Fprintf(conn, "POST /v1/models HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n", addr)
	require.NoError(t, err)
	respc := make(chan *http.Response, 1)
	go func() {
		resp, _ := http.ReadResponse(bufio.NewReader(conn), nil)
		respc <- resp
	}()
	chunk := fmt.Sprintf("%x\r\n%s\r\n", 1<<20, strings.Repeat(" ", 1<<20))
	var resp *http.Response
	for sent := 0; resp == nil && sent < 64; sent++ {
		if _, err := io.WriteString(conn, chunk); err != nil {
			break // the server answered and closed
		}
		select {
		case resp = <-respc:
		default:
		}
	}
	if resp == nil {
		resp = <-respc
	}
	require.NotNil(t, resp)
	require.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode)

	st, body = rawHTTP(t, addr, "GET /v1/models/%ff%fe HTTP/1.1\r\nHost: "+addr+"\r\nConnection: close\r\n\r\n")
	require.Contains(t, st, "400", body)
	require.Contains(t, body, "UTF-8")

	// A connection that sends nothing, and one left idle after a
	// request, are both closed by the server.
	for _, first := range []string{"", "GET /livez HTTP/1.1\r\nHost: " + addr + "\r\n\r\n"} {
		conn, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		_, err = io.WriteString(conn, first)
		require.NoError(t, err)
		require.NoError(t, conn.SetReadDeadline(time.Now().Add(10*time.Second)))
		_, err = io.Copy(io.Discard, conn) // returns at EOF, when the server closes
		require.NoError(t, err, "the server kept the connection open")
		conn.Close()
	}
}

// TestEdgeRefusesCrossSiteBrowser: a real browser on a page of another
// site posts to the API as an attacker's page would (a form, and no-cors
// fetches with the types a form can send); no job is created.
func TestEdgeRefusesCrossSiteBrowser(t *testing.T) {
	t.Parallel()
	c := harness.Start(t)
	_, err := c.Registry.CreateModel(t.Context(), &registryv1.CreateModelRequest{Model: &registryv1.Model{Name: "pwn"}})
	require.NoError(t, err)
	target := "http://" + c.Addrs.HTTP + "/v1/jobs"
	job := `{"name":"pwn","model":"pwn","process":{"command":"sh","args":["-c","id"]}}`
	page := fmt.Sprintf(`<!doctype html><body>
<form id=f method=POST action=%q enctype="text/plain"><input name='{"name":"pwn","model":"pwn","process":{"command":"sh","args":["-c","id"],"env":{"X":"' value='"}}}'></form>
<script>
const body = %q;
Promise.allSettled([
  fetch(%q, {method: 'POST', mode: 'no-cors', headers: {'Content-Type': 'text/plain'}, body}),
  fetch(%q, {method: 'POST', mode: 'no-cors', body: new Blob([body])}),
  fetch(%q, {method: 'POST', headers: {'Content-Type': 'application/json'}, body}),
]).then(() => { document.title = 'sent'; });
</script></body>`, target, job, target, target, target)
	attacker := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		_, _ = io.WriteString(w, page)
	})}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = attacker.Serve(lis) }()
	t.Cleanup(func() { _ = attacker.Close() })
	// localhost is another site than 127.0.0.1, the API's address.
	_, port, _ := net.SplitHostPort(lis.Addr().String())
	p := openConsole(t, c)
	ctx, cancel := context.WithTimeout(p.ctx, 30*time.Second)
	defer cancel()
	p.ctx = ctx
	p.eval(`location.href = "http://localhost:` + port + `/"; "ok"`)
	require.Eventually(t, func() bool { title, err := p.tryEval(`document.title`); return err == nil && title == "sent" }, 20*time.Second, 50*time.Millisecond)
	p.eval(`document.getElementById('f').submit(); "ok"`)
	require.Eventually(t, func() bool {
		href, err := p.tryEval(`location.href`) // "target navigated" while the form's POST is under way
		return err == nil && strings.Contains(href, "/v1/jobs")
	}, 20*time.Second, 50*time.Millisecond)
	require.Equal(t, 0, jobCount(t, c), "a cross-site page created a job")
	require.Contains(t, p.eval(`document.body.innerText`), "cross-site request refused")
}

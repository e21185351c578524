package cli

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"gopkg.in/yaml.v3"

	iamv1 "github.com/bmaas/bmaas/api/bmaas/iam/v1"
)

// envOf is an environment of exactly vars (os.Getenv is not consulted).
func envOf(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

// writeFile writes content to dir/name and returns its path.
func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o700))
	require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
	return p
}

// headers records the authorization and bmaas-project metadata of the
// last call of an in-memory IAM server.
type headers struct {
	mu             sync.Mutex
	auth, project  string
	projectHeaders int
}

func (h *headers) before(ctx context.Context) error {
	md, _ := metadata.FromIncomingContext(ctx)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.auth, h.project = "", ""
	if v := md.Get("authorization"); len(v) > 0 {
		h.auth = v[0]
	}
	h.projectHeaders = len(md.Get("bmaas-project"))
	if v := md.Get("bmaas-project"); len(v) > 0 {
		h.project = v[0]
	}
	return nil
}

func (h *headers) last() (string, string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.auth, h.project
}

const twoContexts = `# the team's servers
current-context: prod
contexts:
  - name: prod
    server: bmaas.example.com:7070 # the load balancer
    url: https://bmaas.example.com:8080
    token-file: prod-token
    project: vision
    colour: red
  - name: laptop
    server: 127.0.0.1:7070
    token: bmaas_laptop_s3cret
preferences: {editor: vi}
`

func TestContextsSupplyTokenAndProject(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFile(t, dir, "prod-token", "bmaas_prod_s3cret\n")
	cfg := writeFile(t, dir, "config.yaml", twoContexts)
	var h headers
	f := &fakeIAM{projects: map[string]*iamv1.Project{}}
	mem := serveInMemory(t, h.before, func(s *grpc.Server) { iamv1.RegisterIAMServiceServer(s, f) })
	call := func(env map[string]string, args ...string) (string, string, error) {
		t.Helper()
		env["BMAAS_CONFIG"] = cfg
		_, _, err := run(t, &globals{dial: mem.dial, getenv: envOf(env)}, append([]string{"whoami"}, args...)...)
		auth, project := h.last()
		return auth, project, err
	}

	auth, project, err := call(map[string]string{})
	require.NoError(t, err)
	require.Equal(t, "Bearer bmaas_prod_s3cret", auth, "the current context's token-file, relative to the file's directory")
	require.Equal(t, "vision", project)
	h.mu.Lock()
	require.Equal(t, 1, h.projectHeaders, "one project header")
	h.mu.Unlock()

	auth, project, err = call(map[string]string{"BMAAS_TOKEN": "bmaas_env", "BMAAS_PROJECT": "nlp"})
	require.NoError(t, err)
	require.Equal(t, "Bearer bmaas_env", auth, "the environment wins over the context")
	require.Equal(t, "nlp", project)

	auth, project, err = call(map[string]string{"BMAAS_TOKEN": "bmaas_env", "BMAAS_PROJECT": "nlp"},
		"--token", "bmaas_flag", "--project", "speech")
	require.NoError(t, err)
	require.Equal(t, "Bearer bmaas_flag", auth, "a flag wins over the environment")
	require.Equal(t, "speech", project)

	auth, project, err = call(map[string]string{}, "--context", "laptop")
	require.NoError(t, err)
	require.Equal(t, "Bearer bmaas_laptop_s3cret", auth)
	require.Empty(t, project, "laptop names no project: no header")
	auth, _, err = call(map[string]string{"BMAAS_CONTEXT": "laptop"})
	require.NoError(t, err)
	require.Equal(t, "Bearer bmaas_laptop_s3cret", auth, "BMAAS_CONTEXT selects the context")
	auth, _, err = call(map[string]string{"BMAAS_CONTEXT": "laptop"}, "--context", "prod")
	require.NoError(t, err)
	require.Equal(t, "Bearer bmaas_prod_s3cret", auth, "--context wins over BMAAS_CONTEXT")

	calls := f.callCount()
	_, _, err = call(map[string]string{}, "--context", "staging")
	require.EqualError(t, err, `no context "staging" in `+cfg+` (known: prod, laptop)`)
	_, _, err = call(map[string]string{"BMAAS_CONTEXT": "gone"})
	require.EqualError(t, err, `no context "gone" in `+cfg+` (known: prod, laptop)`)
	_, _, err = call(map[string]string{}, "--project", "Vision")
	require.EqualError(t, err, `project "Vision" (--project): must match [a-z0-9][a-z0-9-]{0,62}`)
	_, _, err = call(map[string]string{"BMAAS_PROJECT": "a b"})
	require.EqualError(t, err, `project "a b" (BMAAS_PROJECT): must match [a-z0-9][a-z0-9-]{0,62}`)
	require.Equal(t, calls, f.callCount(), "refused before any call")
}

func TestContextErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	var h headers
	f := &fakeIAM{projects: map[string]*iamv1.Project{}}
	mem := serveInMemory(t, h.before, func(s *grpc.Server) { iamv1.RegisterIAMServiceServer(s, f) })
	whoami := func(cfg string, args ...string) error {
		t.Helper()
		_, _, err := run(t, &globals{dial: mem.dial, getenv: envOf(map[string]string{"BMAAS_CONFIG": cfg})},
			append([]string{"whoami"}, args...)...)
		return err
	}

	both := writeFile(t, dir, "both.yaml", "current-context: x\ncontexts:\n  - {name: x, token: a, token-file: /f}\n")
	require.EqualError(t, whoami(both), "the configuration file "+both+`: context "x" has both token and token-file: keep one`)
	bad := writeFile(t, dir, "bad.yaml", "current-context: [\n")
	require.ErrorContains(t, whoami(bad), "the configuration file "+bad+": yaml:")
	list := writeFile(t, dir, "list.yaml", "- name: x\n")
	require.EqualError(t, whoami(list), "the configuration file "+list+": want a mapping with current-context and contexts")
	noName := writeFile(t, dir, "noname.yaml", "contexts:\n  - server: a:1\n")
	require.EqualError(t, whoami(noName), "the configuration file "+noName+": contexts[0] has no name")
	none := writeFile(t, dir, "none.yaml", "current-context: x\ncontexts: []\n")
	require.EqualError(t, whoami(none), `no context "x" in `+none+" (known: none)")
	missing := writeFile(t, dir, "missing.yaml", "current-context: x\ncontexts: [{name: x, token-file: nope}]\n")
	require.ErrorContains(t, whoami(missing), `context "x": token-file: open `+filepath.Join(dir, "nope"))
	require.Zero(t, f.callCount(), "refused before any call")
	require.NoError(t, whoami(missing, "--token", "t"), "a token given another way needs no token-file")

	require.NoError(t, whoami(filepath.Join(dir, "absent.yaml")), "a missing file configures nothing")
	auth, project := h.last()
	require.Empty(t, auth)
	require.Empty(t, project)
	require.NoError(t, whoami(writeFile(t, dir, "empty.yaml", "")), "an empty file configures nothing")
	require.NoError(t, whoami(both, "--help"), "help reads no file")
}

// TestContextSettlesEveryConnectionSetting: server, token, project and
// the TLS files each come from the flag, else the environment, else the
// context, else the default.
func TestContextSettlesEveryConnectionSetting(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := writeFile(t, dir, "config.yaml", `current-context: prod
contexts:
  - {name: prod, server: "grpcs://prod:7070", project: vision, token: tok, ca-file: ca.pem, cert-file: /abs/c.pem, key-file: k.pem}
  - {name: bare}
`)
	settle := func(env map[string]string, args ...string) *globals {
		t.Helper()
		env["BMAAS_CONFIG"] = cfg
		g := &globals{getenv: envOf(env)}
		newRoot(g)
		require.NoError(t, g.flags.Parse(args))
		require.NoError(t, g.settle())
		return g
	}
	g := settle(map[string]string{})
	require.Equal(t, "grpcs://prod:7070", g.server)
	require.Equal(t, "vision", g.project)
	require.Equal(t, "tok", g.token)
	require.Equal(t, tlsFlags{ca: filepath.Join(dir, "ca.pem"), cert: "/abs/c.pem", key: filepath.Join(dir, "k.pem")}, g.tls)

	g = settle(map[string]string{"BMAAS_SERVER": "env:1", "BMAAS_TLS_CA": "/env/ca", "BMAAS_TLS_CERT": "/env/c",
		"BMAAS_TLS_KEY": "/env/k"})
	require.Equal(t, "env:1", g.server)
	require.Equal(t, tlsFlags{ca: "/env/ca", cert: "/env/c", key: "/env/k"}, g.tls)

	g = settle(map[string]string{"BMAAS_SERVER": "env:1", "BMAAS_TLS_CA": "/env/ca"},
		"--server", "flag:2", "--tls-ca", "/flag/ca", "--tls-cert", "/flag/c", "--tls-key", "/flag/k")
	require.Equal(t, "flag:2", g.server)
	require.Equal(t, tlsFlags{ca: "/flag/ca", cert: "/flag/c", key: "/flag/k"}, g.tls)

	g = settle(map[string]string{}, "--context", "bare")
	require.Equal(t, DefaultServer, g.server, "the built-in default")
	require.Equal(t, tlsFlags{}, g.tls)
	require.Empty(t, g.token)
	require.Empty(t, g.project)

	g = &globals{getenv: envOf(map[string]string{"BMAAS_CONFIG": filepath.Join(dir, "absent.yaml")})}
	newRoot(g)
	require.NoError(t, g.settle())
	require.Equal(t, DefaultServer, g.server)
}

func TestConfigPath(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"BMAAS_CONFIG": "/c/b.yaml", "XDG_CONFIG_HOME": "/x", "HOME": "/h"}, "/c/b.yaml"},
		{map[string]string{"XDG_CONFIG_HOME": "/x", "HOME": "/h"}, "/x/bmaas/config.yaml"},
		{map[string]string{"HOME": "/h"}, "/h/.config/bmaas/config.yaml"},
	} {
		p, err := (&globals{getenv: envOf(tc.env)}).configPath()
		require.NoError(t, err)
		require.Equal(t, tc.want, p)
	}
}

func TestConfigCommands(t *testing.T) {
	t.Parallel()
	home := t.TempDir()
	dir := filepath.Join(home, ".config", "bmaas")
	cfg := filepath.Join(dir, "config.yaml")
	g := &globals{getenv: envOf(map[string]string{"HOME": home})}
	writeFile(t, home, "work/tok", "bmaas_x\n")
	wd, err := os.Getwd()
	require.NoError(t, err)

	// No file yet: nothing configured.
	out, _, err := run(t, g, "config", "get-contexts")
	require.NoError(t, err)
	require.Equal(t, "CURRENT   NAME   SERVER   PROJECT\n", out)
	_, _, err = run(t, g, "config", "current-context")
	require.EqualError(t, err, "no current context in "+cfg+": choose one with bmaas config use-context NAME")
	_, _, err = run(t, g, "config", "use-context", "prod")
	require.EqualError(t, err, `no context "prod" in `+cfg+" (known: none)")
	require.NoFileExists(t, cfg)

	out, _, err = run(t, g, "config", "set-context", "prod", "--server", "bmaas.example.com:7070",
		"--url", "https://bmaas.example.com:8080", "--token-file", "~/work/tok", "--project", "vision", "--ca-file", "ca.pem")
	require.NoError(t, err)
	require.Equal(t, ""+
		"NAME        prod\n"+
		"SERVER      bmaas.example.com:7070\n"+
		"URL         https://bmaas.example.com:8080\n"+
		"PROJECT     vision\n"+
		"TOKEN       from "+filepath.Join(home, "work", "tok")+"\n"+
		"CA FILE     "+filepath.Join(wd, "ca.pem")+"\n"+
		"CERT FILE   -\n"+
		"KEY FILE    -\n"+
		"\n"+
		"written to "+cfg+"\n", out)
	st, err := os.Stat(cfg)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), st.Mode().Perm())
	b, err := os.ReadFile(cfg)
	require.NoError(t, err)
	require.Equal(t, "contexts:\n"+
		"  - name: prod\n"+
		"    server: bmaas.example.com:7070\n"+
		"    url: https://bmaas.example.com:8080\n"+
		"    token-file: "+filepath.Join(home, "work", "tok")+"\n"+
		"    project: vision\n"+
		"    ca-file: "+filepath.Join(wd, "ca.pem")+"\n", string(b), "absolute paths, no current context chosen")

	_, _, err = run(t, g, "config", "set-context", "laptop", "--server", "127.0.0.1:7070")
	require.NoError(t, err)
	out, _, err = run(t, g, "config", "use-context", "laptop")
	require.NoError(t, err)
	require.Equal(t, "switched to context \"laptop\"\n", out)
	out, _, err = run(t, g, "config", "current-context")
	require.NoError(t, err)
	require.Equal(t, "laptop\n", out)
	out, _, err = run(t, g, "config", "get-contexts")
	require.NoError(t, err)
	require.Equal(t, ""+
		"CURRENT   NAME     SERVER                   PROJECT\n"+
		"          prod     bmaas.example.com:7070   vision\n"+
		"*         laptop   127.0.0.1:7070           -\n", out)
	_, _, err = run(t, g, "config", "use-context", "staging")
	require.EqualError(t, err, `no context "staging" in `+cfg+" (known: prod, laptop)")

	// Changing one value keeps the others; an empty value removes the key.
	_, _, err = run(t, g, "config", "set-context", "prod", "--project", "nlp", "--ca-file", "")
	require.NoError(t, err)
	_, c, err := g.loadConfig()
	require.NoError(t, err)
	require.Equal(t, clientContext{Name: "prod", Server: "bmaas.example.com:7070", URL: "https://bmaas.example.com:8080",
		TokenFile: filepath.Join(home, "work", "tok"), Project: "nlp"}, *c.find("prod"))
	require.Equal(t, "laptop", c.CurrentContext)

	out, _, err = run(t, g, "-o", "json", "config", "get-contexts")
	require.NoError(t, err)
	var doc clientConfig
	require.NoError(t, json.Unmarshal([]byte(out), &doc), out)
	require.Equal(t, "laptop", doc.CurrentContext)
	require.Len(t, doc.Contexts, 2)
	out, _, err = run(t, g, "-o", "id", "config", "get-contexts")
	require.NoError(t, err)
	require.Equal(t, "prod\nlaptop\n", out)
	out, _, err = run(t, g, "-o", "yaml", "config", "current-context")
	require.NoError(t, err)
	require.Equal(t, "current-context: laptop\n", out)
	out, _, err = run(t, g, "-o", "json", "config", "use-context", "prod")
	require.NoError(t, err)
	require.JSONEq(t, `{"current-context": "prod"}`, out)
	out, _, err = run(t, g, "-o", "id", "config", "current-context")
	require.NoError(t, err)
	require.Equal(t, "prod\n", out)
	out, _, err = run(t, g, "-o", "json", "config", "set-context", "laptop", "--project", "speech")
	require.NoError(t, err)
	require.JSONEq(t, `{"name": "laptop", "server": "127.0.0.1:7070", "project": "speech"}`, out)
}

// TestSetContextKeepsTheRestOfTheFile: other contexts, unknown keys and
// comments survive; an inline token is never printed, and --token-file
// replaces it.
func TestSetContextKeepsTheRestOfTheFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := writeFile(t, dir, "config.yaml", twoContexts)
	require.NoError(t, os.Chmod(cfg, 0o644))
	g := &globals{getenv: envOf(map[string]string{"BMAAS_CONFIG": cfg})}

	out, _, err := run(t, g, "config", "set-context", "prod", "--server", "other.example.com:7070")
	require.NoError(t, err)
	require.Contains(t, out, "SERVER      other.example.com:7070\n")
	b, err := os.ReadFile(cfg)
	require.NoError(t, err)
	require.Equal(t, strings.Replace(twoContexts, "bmaas.example.com:7070", "other.example.com:7070", 1), string(b),
		"only the value changes: comments, order, unknown keys and the other context stay")
	st, err := os.Stat(cfg)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), st.Mode().Perm(), "written 0600")

	out, _, err = run(t, g, "-o", "json", "config", "get-contexts")
	require.NoError(t, err)
	require.NotContains(t, out, "s3cret")
	require.Contains(t, out, `"token": "REDACTED"`)
	out, _, err = run(t, g, "config", "set-context", "laptop", "--project", "vision")
	require.NoError(t, err)
	require.Contains(t, out, "TOKEN       inline (in the file)\n")
	require.NotContains(t, out, "s3cret")

	tok := writeFile(t, dir, "laptop-token", "t\n")
	_, _, err = run(t, g, "config", "set-context", "laptop", "--token-file", tok)
	require.NoError(t, err)
	_, c, err := g.loadConfig()
	require.NoError(t, err)
	require.Equal(t, clientContext{Name: "laptop", Server: "127.0.0.1:7070", TokenFile: tok, Project: "vision"}, *c.find("laptop"),
		"the token-file replaces the inline token")
	var raw map[string]any
	b, err = os.ReadFile(cfg)
	require.NoError(t, err)
	require.NoError(t, yaml.Unmarshal(b, &raw))
	require.Equal(t, map[string]any{"editor": "vi"}, raw["preferences"])
	require.Equal(t, "red", raw["contexts"].([]any)[0].(map[string]any)["colour"])

	// A file with no contexts key, or an empty one, gets one.
	empty := writeFile(t, dir, "empty.yaml", "contexts:\n")
	_, _, err = run(t, &globals{getenv: envOf(map[string]string{"BMAAS_CONFIG": empty})}, "config", "set-context", "a")
	require.NoError(t, err)
	b, err = os.ReadFile(empty)
	require.NoError(t, err)
	require.Equal(t, "contexts:\n  - name: a\n", string(b))
}

func TestSetContextRefusesBadValues(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.yaml")
	g := &globals{getenv: envOf(map[string]string{"BMAAS_CONFIG": cfg})}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"prod", "--url", "bmaas.example.com:8080"}, "--url bmaas.example.com:8080: must start with http:// or https://"},
		{[]string{"prod", "--project", "Vision"}, "--project Vision: must match [a-z0-9][a-z0-9-]{0,62}"},
		{[]string{"prod", "--server", "a b:1"}, `--server "a b:1": an address has no spaces`},
		{[]string{"prod", "--token-file", " /t"}, `--token-file " /t": no spaces around the value`},
		{[]string{" prod"}, `NAME " prod": a context's name must not be empty or start or end with spaces`},
		{[]string{""}, `NAME "": a context's name must not be empty`},
		{[]string{}, "expected NAME (got 0 arguments)"},
		{[]string{"a", "b"}, "expected NAME (got 2 arguments)"},
	} {
		_, _, err := run(t, g, append([]string{"config", "set-context"}, tc.args...)...)
		require.Error(t, err, "%v", tc.args)
		require.Contains(t, err.Error(), tc.want, "%v", tc.args)
		require.NoFileExists(t, cfg, "%v: nothing written", tc.args)
	}
	both := writeFile(t, dir, "both.yaml", "contexts:\n  - {name: x, token: a, token-file: /f}\n")
	_, _, err := run(t, &globals{getenv: envOf(map[string]string{"BMAAS_CONFIG": both})}, "config", "set-context", "y")
	require.ErrorContains(t, err, `context "x" has both token and token-file`)
	bad := writeFile(t, dir, "bad.yaml", "contexts: {name: x}\n")
	_, _, err = run(t, &globals{getenv: envOf(map[string]string{"BMAAS_CONFIG": bad})}, "config", "set-context", "y")
	require.ErrorContains(t, err, "the configuration file "+bad)
}

// TestJobsCarryTheProject: train and job list name the project in their
// requests, and job list/get show it.
func TestJobsCarryTheProject(t *testing.T) {
	t.Parallel()
	g, reg, sch := startPlatform(t)
	reg.addDataset("iris", 1, "a", "target")
	g.getenv = envOf(map[string]string{"BMAAS_CONFIG": filepath.Join(t.TempDir(), "none.yaml"), "BMAAS_PROJECT": "vision"})

	_, _, err := run(t, g, "train", "--dataset", "iris", "--model", "iris", "--algorithm", "logistic")
	require.NoError(t, err)
	require.Equal(t, "vision", sch.jobs[0].GetSpec().GetProject())
	_, _, err = run(t, g, "train", "--dataset", "iris", "--model", "iris", "--algorithm", "logistic", "--project", "nlp")
	require.NoError(t, err)
	require.Equal(t, "nlp", sch.jobs[1].GetSpec().GetProject())

	out, _, err := run(t, g, "job", "list")
	require.NoError(t, err)
	require.Equal(t, "vision", sch.lastList.GetProject())
	require.Regexp(t, `(?m)^ID\s+PROJECT\s+MODEL\s`, out)
	require.Regexp(t, `(?m)^job-1\s+vision\s+iris\s`, out)
	require.Regexp(t, `(?m)^job-2\s+nlp\s+iris\s`, out)
	_, _, err = run(t, g, "job", "list", "--project", "nlp")
	require.NoError(t, err)
	require.Equal(t, "nlp", sch.lastList.GetProject())

	out, _, err = run(t, g, "job", "get", "job-2")
	require.NoError(t, err)
	require.Contains(t, out, "Project:         nlp\n")
	out, _, err = run(t, g, "-o", "json", "job", "get", "job-2")
	require.NoError(t, err)
	require.Contains(t, out, `"project": "nlp"`)

	g.getenv = envOf(map[string]string{"BMAAS_CONFIG": filepath.Join(t.TempDir(), "none.yaml")})
	_, _, err = run(t, g, "job", "list")
	require.NoError(t, err)
	require.Empty(t, sch.lastList.GetProject(), "no project: every project the caller may read")
	_, _, err = run(t, g, "train", "--dataset", "iris", "--model", "iris", "--algorithm", "logistic")
	require.NoError(t, err)
	require.Empty(t, sch.jobs[2].GetSpec().GetProject())
}

// TestGenerateUsesTheContext: generate's HTTP call takes the context's url,
// token and project (Bmaas-Project).
func TestGenerateUsesTheContext(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var auth, project string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		auth, project = r.Header.Get("Authorization"), r.Header.Get("Bmaas-Project")
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"id": "c1", "choices": [{"message": {"content": "hi"}}], "usage": {}}`))
	}))
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	cfg := writeFile(t, dir, "config.yaml", "current-context: a\ncontexts:\n  - {name: a, url: "+srv.URL+", token: tok, project: vision}\n")
	g := &globals{getenv: envOf(map[string]string{"BMAAS_CONFIG": cfg})}
	out, _, err := run(t, g, "-o", "json", "generate", "--deployment", "tiny", "hello")
	require.NoError(t, err)
	require.Contains(t, out, `"id": "c1"`)
	mu.Lock()
	require.Equal(t, "Bearer tok", auth)
	require.Equal(t, "vision", project)
	mu.Unlock()

	g = &globals{getenv: envOf(map[string]string{"BMAAS_CONFIG": cfg, "BMAAS_URL": "http://127.0.0.1:1"})}
	_, _, err = run(t, g, "-o", "json", "generate", "--deployment", "tiny", "hello", "--timeout", "2s")
	require.ErrorContains(t, err, "the gateway at http://127.0.0.1:1 did not answer", "BMAAS_URL wins over the context")
	_, _, err = run(t, g, "-o", "json", "generate", "--deployment", "tiny", "hello", "--url", srv.URL)
	require.NoError(t, err, "--url wins over BMAAS_URL")
}

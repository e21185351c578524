package cli

import (
	"bytes"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/bmaas/bmaas/internal/app"
	"github.com/bmaas/bmaas/pkg/pki"
)

// The files under deploy/ start bmaas with flags, BMAAS_* variables and a
// YAML configuration. These tests fail when one of them names something
// the binary does not have (a renamed flag, a mistyped key), so the
// manifests cannot drift from the code unnoticed.

const deployDir = "../../deploy"

// serveFlags is `bmaas serve`'s flag set, global flags included.
func serveFlags(t *testing.T) *pflag.FlagSet {
	t.Helper()
	cmd, _, err := Root().Find([]string{"serve"})
	require.NoError(t, err)
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	fs.AddFlagSet(cmd.Flags())
	fs.AddFlagSet(cmd.InheritedFlags())
	return fs
}

// checkServeArgs checks that args (after "serve") name flags of serve.
func checkServeArgs(t *testing.T, where string, fs *pflag.FlagSet, args []string) {
	t.Helper()
	seen := 0
	for _, a := range args {
		name, ok := strings.CutPrefix(a, "--")
		if !ok {
			continue
		}
		name, val, _ := strings.Cut(name, "=")
		require.NotNil(t, fs.Lookup(name), "%s: bmaas serve has no flag --%s", where, name)
		if name == "target" {
			_, err := app.ParseTargets(val)
			require.NoError(t, err, "%s: --target=%s", where, val)
		}
		seen++
	}
	require.Positive(t, seen, "%s: no flags found", where)
}

func TestComposeFileStartsBmaasWithRealFlags(t *testing.T) {
	fs := serveFlags(t)
	envs := map[string]bool{}
	fs.VisitAll(func(f *pflag.Flag) {
		envs["BMAAS_"+strings.NewReplacer("-", "_", ".", "_").Replace(strings.ToUpper(f.Name))] = true
	})
	b, err := os.ReadFile(filepath.Join(deployDir, "compose", "compose.yaml"))
	require.NoError(t, err)
	var doc struct {
		Services map[string]struct {
			Image       string            `yaml:"image"`
			Entrypoint  []string          `yaml:"entrypoint"`
			Command     []string          `yaml:"command"`
			Environment map[string]string `yaml:"environment"`
			Privileged  bool              `yaml:"privileged"`
		} `yaml:"services"`
	}
	require.NoError(t, yaml.Unmarshal(b, &doc))
	n := 0
	for name, svc := range doc.Services {
		// Services of the image that run something else (the one-shot
		// that makes the credentials) name their entrypoint.
		if !strings.HasPrefix(svc.Image, "bmaas") || len(svc.Entrypoint) > 0 {
			continue
		}
		require.Equal(t, "serve", svc.Command[0], name)
		checkServeArgs(t, "compose "+name, fs, svc.Command[1:])
		for k := range svc.Environment {
			require.True(t, envs[k], "compose %s: %s is no BMAAS_* variable of a flag", name, k)
		}
		// The compose file's etcd and NATS are closed: every process
		// needs their credentials.
		env := svc.Environment
		require.True(t, env["BMAAS_ETCD_CERT"] != "" || env["BMAAS_ETCD_PASSWORD_FILE"] != "", "compose %s: no etcd credentials", name)
		require.True(t, env["BMAAS_NATS_PASSWORD_FILE"] != "" || env["BMAAS_NATS_CREDS"] != "", "compose %s: no NATS credentials", name)
		// An agent's sandbox makes namespaces and cgroups.
		if slices.ContainsFunc(svc.Command, func(a string) bool {
			return strings.HasPrefix(a, "--target=") && strings.Contains(a, app.TargetTrainerAgent)
		}) {
			require.True(t, svc.Privileged, "compose %s: the task sandbox needs a privileged container", name)
		}
		n++
	}
	require.GreaterOrEqual(t, n, 2, "bmaas services in compose.yaml")
}

func TestSystemdUnitsAndConfigAreValid(t *testing.T) {
	fs := serveFlags(t)
	units, err := filepath.Glob(filepath.Join(deployDir, "systemd", "*.service"))
	require.NoError(t, err)
	require.NotEmpty(t, units)
	for _, u := range units {
		b, err := os.ReadFile(u)
		require.NoError(t, err)
		var exec string
		for line := range strings.SplitSeq(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "ExecStart="); ok {
				exec = v
			}
		}
		f := strings.Fields(exec)
		require.GreaterOrEqual(t, len(f), 2, "%s: ExecStart", u)
		require.Equal(t, "serve", f[1], u)
		checkServeArgs(t, filepath.Base(u), fs, f[2:])
		// The agent makes a cgroup per task below its own: systemd must
		// hand the unit's cgroup over.
		if strings.Contains(exec, app.TargetTrainerAgent) {
			require.Regexp(t, `(?m)^Delegate=yes$`, string(b), "%s: the task sandbox needs a delegated cgroup", u)
		}
	}

	// The example configuration loads as `bmaas serve --config` loads it
	// (unknown keys are errors) and is a valid configuration.
	example := filepath.Join(deployDir, "systemd", "bmaas.yaml")
	cfg := loadExample(t, example)
	cfg.Targets = app.AllTargets
	require.NoError(t, cfg.Validate())
	require.Equal(t, "10.0.0.17", cfg.AdvertiseHost)
	require.Equal(t, "gpu-07", cfg.TrainerAgent.Node)
	require.True(t, cfg.TLS.Enabled(), "the example shows TLS")
	require.NotEmpty(t, cfg.Etcd.PasswordFile, "the example shows etcd credentials")
	require.NotEmpty(t, cfg.NATS.PasswordFile, "the example shows NATS credentials")

	// The keys it shows commented out exist too (alternatives, such as
	// nats_creds beside nats_user, need not make a valid whole).
	b, err := os.ReadFile(example)
	require.NoError(t, err)
	on, n := uncommentKeys(b)
	require.Positive(t, n, "no commented-out keys found")
	tmp := filepath.Join(t.TempDir(), "bmaas.yaml")
	require.NoError(t, os.WriteFile(tmp, on, 0o600))
	loadExample(t, tmp)
}

// loadExample loads a configuration file as `bmaas serve --config` does.
func loadExample(t *testing.T, path string) app.Config {
	t.Helper()
	var cfg app.Config
	var file string
	cmd := &cobra.Command{Use: "serve"}
	bindConfig(cmd, &cfg, &file)
	require.NoError(t, loadConfig(cmd.Flags(), &cfg, path))
	return cfg
}

// commentedKey is a YAML line commented out: "# key: value" (the
// comment's own indentation kept), as opposed to prose.
var commentedKey = regexp.MustCompile(`(?m)^(\s*)# (\s*[a-z_]+:(?:\s.*)?)$`)

// uncommentKeys turns the commented-out keys of a YAML file on and says
// how many there were.
func uncommentKeys(b []byte) ([]byte, int) {
	return commentedKey.ReplaceAll(b, []byte("$1$2")), len(commentedKey.FindAll(b, -1))
}

func TestDockerfileCommandIsReal(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(deployDir, "docker", "Dockerfile"))
	require.NoError(t, err)
	m := regexp.MustCompile(`(?m)^CMD (\[.*\])$`).FindSubmatch(b)
	require.NotNil(t, m, "Dockerfile has no CMD")
	var args []string
	require.NoError(t, json.Unmarshal(m[1], &args))
	require.Equal(t, "up", args[0])
	cmd, _, err := Root().Find([]string{"up"})
	require.NoError(t, err)
	for _, a := range args[1:] {
		name, _, _ := strings.Cut(strings.TrimPrefix(a, "--"), "=")
		require.NotNil(t, cmd.Flags().Lookup(name), "bmaas up has no flag --%s", name)
	}
}

// TestHelmChartRenders renders the chart with helm for a few sets of
// values and checks every bmaas container's flags: they exist, the
// variables they use are the container's, and together they make a valid
// configuration.
func TestHelmChartRenders(t *testing.T) {
	helm, err := exec.LookPath("helm")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("helm is not installed (.ci/run installs it)")
		}
		t.Skip("helm is not installed")
	}
	chart := filepath.Join(deployDir, "helm", "bmaas")
	out, err := exec.Command(helm, "lint", "--strict", chart).CombinedOutput()
	require.NoError(t, err, "helm lint: %s", out)
	fs := serveFlags(t)
	external := []string{"etcd.bundled=false", "etcd.endpoints={https://e1:2379,https://e2:2379}", "nats.bundled=false", "nats.url=tls://n:4222"}
	for _, tc := range []struct {
		name    string
		set     []string
		want    []string // in the rendered output
		notWant []string
	}{
		{"defaults", nil, []string{"kind: DaemonSet", "kind: StatefulSet", "--advertise-host=$(POD_IP)",
			// The bundled etcd and NATS are closed, with a generated Secret.
			"name: t-bmaas-bundled", "--client-cert-auth", "--etcd-endpoints=https://", "--etcd-cert=/run/secrets/bmaas/etcd/tls.crt",
			"--nats-url=tls://", "--nats-password-file=/run/secrets/bmaas/nats/password", "password: $NATS_PASSWORD",
			// The edge answers for the Service's names.
			"--http.allowed-hosts=t-bmaas,t-bmaas.default,t-bmaas.default.svc,t-bmaas.default.svc.cluster.local",
			// The task sandbox.
			"--trainer-agent.sandbox=bwrap", "privileged: true"},
			[]string{"--tls.", "kind: Certificate"}},
		{"cluster", append(external, "auth.token=s3cret", "agent.gpus=8", "control.replicas=3", "control.storage.existingClaim=shared",
			"etcd.username=bmaas", "etcd.passwordSecret.name=etcd-bmaas", "etcd.tlsSecret=etcd-client", "etcd.clientCert=true",
			"nats.credsSecret.name=nats-bmaas", "nats.tlsSecret=nats-ca"),
			[]string{"--etcd-endpoints=https://e1:2379,https://e2:2379", "--auth.token-file=/run/secrets/bmaas/auth/token", "nvidia.com/gpu: 8", "claimName: shared",
				"--etcd-username=bmaas", "--etcd-password-file=/run/secrets/bmaas/etcd/password", "--etcd-ca=", "--etcd-cert=", "name: etcd-bmaas",
				"--nats-creds=/run/secrets/bmaas/nats/nats.creds", "--nats-ca=/run/secrets/bmaas/nats/ca.crt", "name: nats-bmaas"},
			[]string{"-bundled", "--nats-cert=", "--nats-user="}},
		{"tls", append(external, "tls.enabled=true", "tls.existingSecret=bmaas-tls", "tls.caSecret=bmaas-ca",
			"nats.user=bmaas", "nats.passwordSecret.name=nats-bmaas", "http.allowedHosts={bmaas.example.com}",
			"http.allowedOrigins={https://console.example.com}", "http.maxBodyBytes=1048576", "control.importRoots={/models,/srv/models}"),
			[]string{"--tls.cert-file=/run/secrets/bmaas/tls/tls.crt", "--tls.key-file=/run/secrets/bmaas/tls/tls.key",
				"--tls.client-ca-file=/run/secrets/bmaas/tls/ca.crt", "--tls.ca-key-file=/run/secrets/bmaas/ca/tls.key",
				"secretName: bmaas-tls", "secretName: bmaas-ca", "scheme: HTTPS",
				"--advertise-host=$(POD_NAME).t-bmaas-control.default.svc", ".svc.cluster.local,bmaas.example.com",
				"--http.allowed-origins=https://console.example.com", "--http.max-body-bytes=1048576", "--registry.import-roots=/models,/srv/models",
				"--nats-user=bmaas", "--nats-password-file="},
			[]string{"kind: Certificate", "scheme: HTTP}"}},
		{"cert-manager", []string{"tls.enabled=true", "tls.certManager.issuerRef.name=bmaas-ca", "tls.certManager.issuerRef.kind=Issuer",
			"tls.caSecret=bmaas-ca", "tls.extraDnsNames={bmaas.example.com}"},
			[]string{"kind: Certificate", "secretName: t-bmaas-tls"}, nil},
		{"no-sandbox", []string{"agent.sandbox.mode=none"}, []string{"--trainer-agent.sandbox=none"}, []string{"privileged: true"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := []string{"template", "t", chart}
			for _, s := range tc.set {
				args = append(args, "--set", s)
			}
			out, err := exec.Command(helm, args...).Output()
			require.NoError(t, err, "helm template: %v", err)
			for _, w := range tc.want {
				require.True(t, strings.Contains(string(out), w), "the rendered chart lacks %q", w)
			}
			for _, w := range tc.notWant {
				require.False(t, strings.Contains(string(out), w), "the rendered chart has %q", w)
			}
			containers := 0
			var cert *helmDoc
			var controlArgs []string
			dec := yaml.NewDecoder(bytes.NewReader(out))
			for {
				var doc helmDoc
				if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
					break
				} else {
					require.NoError(t, err)
				}
				if doc.Kind == "Certificate" {
					cert = &doc
				}
				for _, c := range doc.Spec.Template.Spec.Containers {
					if c.Name != "bmaas" {
						continue
					}
					where := tc.name + " " + doc.Kind
					require.Equal(t, "serve", c.Args[0])
					checkServeArgs(t, where, fs, c.Args[1:])
					validateServeArgs(t, where, c.Args[1:], c.Env)
					if doc.Kind == "StatefulSet" {
						controlArgs = c.Args[1:]
					}
					containers++
				}
			}
			require.Equal(t, 2, containers, "bmaas containers (control and agent)")
			if cert != nil {
				checkCertificate(t, cert, controlArgs)
			}
		})
	}
	for _, tc := range []struct {
		name string
		set  []string
		want string
	}{
		// A second control replica without a shared volume is refused.
		{"replicas", []string{"control.replicas=2"}, "existingClaim"},
		{"tls without a certificate", []string{"tls.enabled=true", "tls.caSecret=ca"}, "tls.existingSecret"},
		{"tls without the CA key", []string{"tls.enabled=true", "tls.existingSecret=bmaas-tls"}, "tls.caSecret"},
		{"etcd user without password", append(external, "etcd.username=bmaas"), "etcd.passwordSecret.name"},
		{"nats user and creds", append(external, "nats.user=u", "nats.passwordSecret.name=p", "nats.credsSecret.name=c"), "not both"},
		{"sandbox", []string{"agent.sandbox.mode=chroot"}, "agent.sandbox.mode"},
	} {
		args := []string{"template", "t", chart}
		for _, s := range tc.set {
			args = append(args, "--set", s)
		}
		out, err := exec.Command(helm, args...).CombinedOutput()
		require.Error(t, err, tc.name)
		require.Contains(t, string(out), tc.want, tc.name)
	}
}

// helmDoc is what the test reads of a rendered manifest.
type helmDoc struct {
	Kind string `yaml:"kind"`
	Spec struct {
		Template struct {
			Spec struct {
				Containers []struct {
					Name string       `yaml:"name"`
					Args []string     `yaml:"args"`
					Env  []helmEnvVar `yaml:"env"`
				} `yaml:"containers"`
			} `yaml:"spec"`
		} `yaml:"template"`
		// A cert-manager Certificate's.
		DNSNames    []string `yaml:"dnsNames"`
		IPAddresses []string `yaml:"ipAddresses"`
		URIs        []string `yaml:"uris"`
	} `yaml:"spec"`
}

type helmEnvVar struct {
	Name string `yaml:"name"`
}

// podValues stand for what Kubernetes puts in a container's variables.
var podValues = map[string]string{"POD_IP": "10.1.2.3", "POD_NAME": "t-bmaas-control-0", "NODE_NAME": "gpu-07",
	"CPU_MILLIS": "4000", "MEMORY_BYTES": "17179869184"}

var kubeVar = regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`)

// expandPodVars replaces the $(VAR) references Kubernetes expands, each of
// which must be a variable of the container.
func expandPodVars(t *testing.T, where string, args []string, env []helmEnvVar) []string {
	t.Helper()
	defined := map[string]bool{}
	for _, e := range env {
		defined[e.Name] = true
	}
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = kubeVar.ReplaceAllStringFunc(a, func(ref string) string {
			name := kubeVar.FindStringSubmatch(ref)[1]
			require.True(t, defined[name], "%s: %s uses $(%s), which the container does not define", where, a, name)
			v, ok := podValues[name]
			require.True(t, ok, "%s: no test value for $(%s)", where, name)
			return v
		})
	}
	return out
}

// validateServeArgs parses args as bmaas serve does and validates the
// configuration they make.
func validateServeArgs(t *testing.T, where string, args []string, env []helmEnvVar) {
	t.Helper()
	var cfg app.Config
	var file, targets string
	cmd := &cobra.Command{Use: "serve"}
	bindConfig(cmd, &cfg, &file)
	cmd.Flags().StringVar(&targets, "target", "all", "")
	require.NoError(t, cmd.Flags().Parse(expandPodVars(t, where, args, env)), where)
	var err error
	cfg.Targets, err = app.ParseTargets(targets)
	require.NoError(t, err, where)
	require.NoError(t, cfg.Validate(), where)
}

// checkCertificate checks that the chart's Certificate names what the
// pods are dialled by (the Service, each control pod's announced host) and
// carries the identity replicas require.
func checkCertificate(t *testing.T, doc *helmDoc, controlArgs []string) {
	t.Helper()
	c := &x509.Certificate{DNSNames: doc.Spec.DNSNames}
	for _, ip := range doc.Spec.IPAddresses {
		c.IPAddresses = append(c.IPAddresses, net.ParseIP(ip))
	}
	for _, u := range doc.Spec.URIs {
		pu, err := url.Parse(u)
		require.NoError(t, err)
		c.URIs = append(c.URIs, pu)
	}
	require.NoError(t, pki.RequireNode(c), "the certificate lacks the node identity replicas require")
	hosts := []string{"127.0.0.1", "localhost"}
	for _, a := range controlArgs {
		if v, ok := strings.CutPrefix(a, "--advertise-host="); ok {
			hosts = append(hosts, strings.ReplaceAll(v, "$(POD_NAME)", podValues["POD_NAME"]))
		}
		if v, ok := strings.CutPrefix(a, "--http.allowed-hosts="); ok {
			hosts = append(hosts, strings.Split(v, ",")...)
		}
	}
	require.Greater(t, len(hosts), 3, "no announced host or allowed hosts among the control's flags")
	for _, h := range hosts {
		require.NoError(t, c.VerifyHostname(h), "the certificate does not name %s", h)
	}
}

// foreignFlags are flags the deploy README names of other programs
// (docker build, etcd).
var foreignFlags = map[string]bool{"build-arg": true, "client-cert-auth": true}

// TestDeployReadmeNamesRealFlags checks the flags the READMEs tell an
// operator to use: those the deploy README names in its text, those of
// every `bmaas serve` command in either README's shell blocks, and the
// chart values its `helm install --set` commands set.
func TestDeployReadmeNamesRealFlags(t *testing.T) {
	fs := serveFlags(t)
	b, err := os.ReadFile(filepath.Join(deployDir, "README.md"))
	require.NoError(t, err)
	deployReadme := string(b)
	b, err = os.ReadFile(filepath.Join(deployDir, "..", "README.md"))
	require.NoError(t, err)
	readme := string(b)

	fence := regexp.MustCompile("(?s)```[a-z]*\n(.*?)```")
	prose := fence.ReplaceAllString(deployReadme, "")
	n := 0
	for _, m := range regexp.MustCompile("`--([a-z][a-z0-9.-]*)[^`]*`").FindAllStringSubmatch(prose, -1) {
		if !foreignFlags[m[1]] {
			require.NotNil(t, fs.Lookup(m[1]), "deploy/README.md names --%s, which bmaas serve does not have", m[1])
			n++
		}
	}
	require.Positive(t, n, "no flags found in deploy/README.md")

	var values map[string]any
	b, err = os.ReadFile(filepath.Join(deployDir, "helm", "bmaas", "values.yaml"))
	require.NoError(t, err)
	require.NoError(t, yaml.Unmarshal(b, &values))
	serves, sets := 0, 0
	for name, doc := range map[string]string{"README.md": readme, "deploy/README.md": deployReadme} {
		for _, block := range fence.FindAllStringSubmatch(doc, -1) {
			for line := range strings.SplitSeq(strings.ReplaceAll(block[1], "\\\n", " "), "\n") {
				line, _, _ = strings.Cut(line, " #")
				f := strings.Fields(line)
				for i := 0; i+1 < len(f); i++ {
					if strings.HasSuffix(f[i], "bmaas") && f[i+1] == "serve" {
						checkServeArgs(t, name+": "+line, fs, f[i+2:])
						serves++
					}
					if f[i] == "--set" {
						key, _, _ := strings.Cut(strings.Trim(f[i+1], "'"), "=")
						require.True(t, hasValue(values, strings.Split(key, ".")), "%s: --set %s: no such value in the chart", name, key)
						sets++
					}
				}
			}
		}
	}
	require.Positive(t, serves, "no bmaas serve commands found")
	require.Positive(t, sets, "no helm --set found")
}

// hasValue reports whether the chart's values have the key path; below
// an empty map (a free-form one, such as an issuerRef) any key goes.
func hasValue(values map[string]any, path []string) bool {
	if len(values) == 0 {
		return true
	}
	v, ok := values[path[0]]
	if !ok {
		return false
	}
	if len(path) == 1 {
		return true
	}
	m, ok := v.(map[string]any)
	return ok && hasValue(m, path[1:])
}

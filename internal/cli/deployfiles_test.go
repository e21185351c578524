package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
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
// values and checks every bmaas container's flags.
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
	for _, tc := range []struct {
		name string
		set  []string
		want []string // in the rendered output
	}{
		{"defaults", nil, []string{"kind: DaemonSet", "kind: StatefulSet", "--advertise-host=$(POD_IP)"}},
		{"cluster", []string{"etcd.bundled=false", "etcd.endpoints={http://e1:2379,http://e2:2379}", "nats.bundled=false",
			"nats.url=nats://n:4222", "auth.token=s3cret", "agent.gpus=8", "control.replicas=3", "control.storage.existingClaim=shared"},
			[]string{"--etcd-endpoints=http://e1:2379,http://e2:2379", "--auth.token-file=", "nvidia.com/gpu: 8", "claimName: shared"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := []string{"template", "t", chart}
			for _, s := range tc.set {
				args = append(args, "--set", s)
			}
			out, err := exec.Command(helm, args...).Output()
			require.NoError(t, err, "helm template: %v", err)
			for _, w := range tc.want {
				require.Contains(t, string(out), w)
			}
			containers := 0
			dec := yaml.NewDecoder(bytes.NewReader(out))
			for {
				var doc struct {
					Kind string `yaml:"kind"`
					Spec struct {
						Template struct {
							Spec struct {
								Containers []struct {
									Name string   `yaml:"name"`
									Args []string `yaml:"args"`
								} `yaml:"containers"`
							} `yaml:"spec"`
						} `yaml:"template"`
					} `yaml:"spec"`
				}
				if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
					break
				} else {
					require.NoError(t, err)
				}
				for _, c := range doc.Spec.Template.Spec.Containers {
					if c.Name != "bmaas" {
						continue
					}
					require.Equal(t, "serve", c.Args[0])
					checkServeArgs(t, tc.name+" "+doc.Kind, fs, c.Args[1:])
					containers++
				}
			}
			require.Equal(t, 2, containers, "bmaas containers (control and agent)")
		})
	}
	// A second control replica without a shared volume is refused.
	out, err = exec.Command(helm, "template", "t", chart, "--set", "control.replicas=2").CombinedOutput()
	require.Error(t, err)
	require.Contains(t, string(out), "existingClaim")
}

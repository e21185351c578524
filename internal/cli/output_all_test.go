//go:build integration

package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/stretchr/testify/require"

	"github.com/bmaas/bmaas/internal/app"
	"github.com/bmaas/bmaas/tests/harness"
)

// outputExempt are the leaf commands whose -o json path this test does not
// run, with the reason. Every other leaf command must appear in the steps
// of TestEveryCommandHonoursOutputJSON.
var outputExempt = map[string]string{
	"up":                           "runs the platform; prints a banner, no result",
	"serve":                        "runs services; prints a banner, no result",
	"replica":                      "a model-server process the agent starts",
	"job logs":                     "a job's log is text, printed as it is",
	"deploy logs":                  "a replica's log is text, printed as it is",
	"dataset download":             "-o is the file written; the data are the file",
	"model version download":       "-o is the file written; the data are the file",
	"predict":                      "needs a ready replica; TestPredictCSVHeader runs its -o json path",
	"deploy rollback":              "needs a rollout to roll back; TestDeployAndPredict runs it",
	"generate":                     "needs a language model deployment; TestGenerateStreamsAndPrintsJSON runs its -o json path",
	"deploy feedback":              "needs a logged request; TestFeedbackJoinsLateInTheWindowOfItsPrediction runs its -o json path",
	"dataset create-from-payloads": "needs logged requests with feedback; TestFeedbackJoinsLateInTheWindowOfItsPrediction runs its -o json path",
	"alert get":                    "needs a fired alert; TestDriftAlertRetrainsPromotesAndResolves runs its -o json path",
	"login":                        "needs an OIDC provider and a person signing in there; TestOIDCLogin runs its -o json path",
}

// outputQuiet are the commands that print nothing with -o json|yaml: they
// confirm a deletion, and have no data to give.
var outputQuiet = map[string]bool{
	"dataset delete": true, "model delete": true, "model version delete": true,
	"deploy delete": true, "runtime delete": true, "alert rule delete": true, "project delete": true,
}

// TestEveryCommandHonoursOutputJSON runs every leaf command with -o json
// against a real cluster: its standard output is one JSON document (or
// nothing, for a deletion), never a table. A new command must join the
// steps or outputExempt.
func TestEveryCommandHonoursOutputJSON(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	addr := harness.Start(t, func(c *app.Config) { c.Registry.ImportRoots = []string{dir} }).Addrs.GRPC
	iris := filepath.Join("..", "..", "examples", "datasets", "iris.csv")
	onnx := filepath.Join(dir, "model.onnx")
	require.NoError(t, os.WriteFile(onnx, []byte("not really onnx"), 0o644))
	spec := filepath.Join(dir, "exp.yaml")
	require.NoError(t, os.WriteFile(spec, []byte(`name: tiny
model: iris
searcher: grid
metric: test_accuracy
mode: max
max_trials: 2
parallelism: 2
params:
  - {name: C, type: log_uniform, low: 0.1, high: 10, grid_points: 2}
template: {algorithm: logistic, dataset: iris, target_column: target}
`), 0o644))
	local := filepath.Join(dir, "iris.bmaas")

	ran := map[string]bool{}
	// step runs one command with -o json and returns its decoded output.
	step := func(args ...string) map[string]any {
		t.Helper()
		out, err := cliAt(t, addr, append([]string{"-o", "json"}, args...)...)
		require.NoError(t, err, "%v", args)
		path := commandPath(args)
		ran[path] = true
		if outputQuiet[path] {
			require.Empty(t, strings.TrimSpace(out), "%v", args)
			return nil
		}
		var doc map[string]any
		require.NoError(t, json.Unmarshal([]byte(out), &doc), "%v printed:\n%s", args, out)
		return doc
	}
	str := func(doc map[string]any, keys ...string) string {
		var v any = doc
		for _, k := range keys {
			switch x := v.(type) {
			case map[string]any:
				v = x[k]
			case []any:
				require.NotEmpty(t, x, "%v", keys)
				v = x[0].(map[string]any)[k]
			}
		}
		s, _ := v.(string)
		require.NotEmpty(t, s, "%v in %v", keys, doc)
		return s
	}

	step("dataset", "upload", "iris", iris)
	step("dataset", "list")
	step("dataset", "get", "iris")
	step("model", "create", "iris")
	step("model", "list")
	step("model", "get", "iris")
	step("model", "update", "iris", "--description", "flowers")
	job := str(step("train", "--dataset", "iris", "--model", "iris", "--algorithm", "logistic", "--wait"), "id")
	step("job", "list")
	step("job", "get", job)
	step("job", "watch", job)
	queued := str(step("train", "--dataset", "iris", "--model", "iris", "--algorithm", "logistic"), "id")
	step("job", "cancel", queued)
	step("node", "get", str(step("node", "list"), "nodes", "name"))
	step("evaluate", "--model", "iris@1", "--dataset", "iris")
	step("model", "policy", "set", "iris", "--metric", "test_accuracy")
	step("model", "policy", "get", "iris")
	step("model", "decisions", "iris")
	x := str(step("experiment", "create", "-f", spec, "--wait"), "id")
	step("experiment", "get", x)
	step("experiment", "list")
	step("experiment", "trials", x)
	x = str(step("experiment", "create", "-f", spec), "id")
	step("experiment", "pause", x)
	step("experiment", "resume", x)
	step("experiment", "cancel", x)

	step("model", "create", "files")
	step("model", "version", "upload", "files", onnx)
	step("model", "version", "import", "files", "--server-path", onnx)
	step("model", "version", "list", "files")
	step("model", "version", "get", "files@1")
	step("model", "alias", "set", "files", "stable", "1")
	step("model", "alias", "get", "files", "stable")
	step("model", "alias", "list", "files")
	step("model", "alias", "unset", "files", "stable")
	step("model", "version", "delete", "files@2")
	step("model", "delete", "files", "--force")
	step("dataset", "upload", "scratch", iris)
	step("dataset", "delete", "scratch")

	step("deploy", "create", "--model", "iris@1", "--min", "0", "--max", "1")
	step("deploy", "list")
	step("deploy", "get", "iris")
	step("deploy", "scale", "iris", "--max", "2")
	step("deploy", "payloads", "iris")
	step("deploy", "monitor", "iris")
	step("alert", "rule", "create", "iris-drift", "--deployment", "iris", "--when", "drift_share > 0.5", "--for", "5m")
	step("alert", "rule", "list")
	step("alert", "rule", "get", "iris-drift")
	step("alert", "rule", "update", "iris-drift", "--for", "10m")
	step("alert", "list")
	step("alert", "rule", "delete", "iris-drift")
	step("deploy", "delete", "iris")

	step("runtime", "create", "echo-v2", "--format", "other", "--command", "python3", "--arg", "serve.py",
		"--protocol", "v2-rest", "--probe-http", "/v2/health/ready")
	step("runtime", "list")
	step("runtime", "get", "echo-v2")
	step("runtime", "delete", "echo-v2")

	step("ml", "train", "--data", iris, "--algorithm", "logistic", "--out", local)
	step("ml", "evaluate", "--model", local, "--data", iris)
	step("ml", "predict", "--model", local, "--data", iris)

	step("project", "create", "vision", "--description", "image models", "--quota", "gpus=2,cpu=8,memory=32Gi")
	step("project", "list")
	step("project", "get", "vision")
	require.Equal(t, "4", str(step("project", "update", "vision", "--quota", "gpus=4,jobs=3"), "quota", "gpus"))
	tok := str(step("token", "create", "--identity", "ci", "--service-account", "--role", "vision=editor"), "token", "id")
	step("token", "list")
	step("token", "get", tok)
	step("token", "rotate", tok, "--overlap", "0s")
	step("token", "revoke", tok)
	step("whoami")
	step("audit", "list", "--limit", "10")
	step("project", "delete", "vision")

	// The configuration file's commands, on a file of the test's own.
	config := filepath.Join(dir, "config.yaml")
	configStep := func(args ...string) map[string]any {
		t.Helper()
		out, _, err := run(t, &globals{getenv: envOf(map[string]string{"BMAAS_CONFIG": config})}, append([]string{"-o", "json"}, args...)...)
		require.NoError(t, err, "%v", args)
		ran[commandPath(args)] = true
		var doc map[string]any
		require.NoError(t, json.Unmarshal([]byte(out), &doc), "%v printed:\n%s", args, out)
		return doc
	}
	configStep("config", "set-context", "here", "--server", addr, "--project", "default")
	configStep("config", "use-context", "here")
	require.Equal(t, "here", str(configStep("config", "current-context"), "current-context"))
	require.Equal(t, "here", str(configStep("config", "get-contexts"), "contexts", "name"))

	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, s := range c.Commands() {
			walk(s)
		}
		path := strings.TrimPrefix(c.CommandPath(), "bmaas ")
		if c.HasSubCommands() || c.Name() == "help" || !c.Runnable() {
			return
		}
		if _, ok := outputExempt[path]; !ok {
			require.True(t, ran[path], "bmaas %s: no step runs its -o json path (add one, or an outputExempt entry with the reason)", path)
		}
	}
	walk(Root())
}

// commandPath is the command an argument list runs: its words before the
// first flag or argument that names no subcommand.
func commandPath(args []string) string {
	c, _, err := Root().Find(args)
	if err != nil {
		return strings.Join(args, " ")
	}
	return strings.TrimPrefix(c.CommandPath(), "bmaas ")
}

//go:build integration

package cli

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// TestErrorsNameWhatTheUserTyped: a server's InvalidArgument names the
// API field (header.name, chunk, spec.model...); the CLI says which
// argument, flag or file of the command line it was.
func TestErrorsNameWhatTheUserTyped(t *testing.T) {
	t.Parallel()
	addr := startRegistry(t)
	dir := t.TempDir()
	good := filepath.Join(dir, "good.csv")
	require.NoError(t, os.WriteFile(good, []byte("a,b\n1,2\n"), 0o644))
	bad := filepath.Join(dir, "bad.csv")
	require.NoError(t, os.WriteFile(bad, []byte("a,b\n1,\"2\n"), 0o644))
	model := filepath.Join(dir, "model.onnx")
	require.NoError(t, os.WriteFile(model, []byte("onnx"), 0o644))
	_, err := cliAt(t, addr, "model", "create", "m")
	require.NoError(t, err)

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"dataset", "upload", "Bad_Name", good}, `NAME: "Bad_Name" must match`},
		{[]string{"dataset", "upload", "ok", bad}, bad + ": "},
		{[]string{"dataset", "upload", "ok", good, "--label", "bad key=1"}, `--label: key "bad key"`},
		{[]string{"dataset", "get", "Bad_Name"}, `NAME: "Bad_Name" must match`},
		{[]string{"dataset", "download", "Bad_Name", "-o", filepath.Join(dir, "x.csv")}, `NAME: "Bad_Name" must match`},
		{[]string{"model", "version", "upload", "Bad_Name", model}, `NAME: "Bad_Name" must match`},
		{[]string{"model", "version", "get", "Bad_Name@1"}, `NAME: "Bad_Name" must match`},
		{[]string{"model", "version", "download", "Bad_Name@1", "-o", filepath.Join(dir, "x.onnx")}, `NAME: "Bad_Name" must match`},
		{[]string{"model", "version", "import", "Bad_Name", "--server-path", model}, `NAME: "Bad_Name" must match`},
		{[]string{"train", "--dataset", "breast_cancer", "--model", "m", "--algorithm", "logistic"}, `--dataset: "breast_cancer" must match`},
	} {
		_, err := cliAt(t, addr, tc.args...)
		require.Error(t, err, "%v", tc.args)
		require.Contains(t, err.Error(), tc.want, "%v", tc.args)
		for _, internal := range []string{"header.", "chunk", "source_path", "spec.", "name:"} {
			require.NotContains(t, err.Error(), internal, "%v", tc.args)
		}
	}
	_, err = cliAt(t, addr, "dataset", "upload", "bc", good)
	require.NoError(t, err)
	_, err = cliAt(t, addr, "train", "--dataset", "bc", "--model", "Bad_Name", "--algorithm", "logistic")
	require.Equal(t, codes.InvalidArgument, status.Code(err), "%v", err)
	require.Contains(t, err.Error(), `--model: "Bad_Name" must match`)
}

// TestHelpExamplesUseValidNames: the names in every command's help
// (--dataset NAME, --model NAME@REF, ...) are names the server accepts.
func TestHelpExamplesUseValidNames(t *testing.T) {
	t.Parallel()
	flag := regexp.MustCompile(`--(dataset|model|deployment|name) ([^\s\\]+)`)
	valid := regexp.MustCompile(`^([a-z0-9][a-z0-9-]{0,62}/)?[a-z0-9][a-z0-9-]{0,62}(@[A-Za-z0-9_-]+)?$`)
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, m := range flag.FindAllStringSubmatch(c.Long+"\n"+c.Example, -1) {
			if strings.ToUpper(m[2]) == m[2] || strings.HasPrefix(m[2], "/") || strings.HasSuffix(m[2], ".bmaas") {
				continue // a placeholder (NAME, NAME@REF) or a local file of bmaas ml
			}
			require.Regexp(t, valid, m[2], "%s: %s", c.CommandPath(), m[0])
		}
		for _, s := range c.Commands() {
			walk(s)
		}
	}
	walk(Root())
}

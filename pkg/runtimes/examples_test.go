package runtimes

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protojson"

	gatewayv1 "github.com/bmaas/bmaas/api/bmaas/gateway/v1"
)

// Every runtime under examples/runtimes parses as a Runtime (protojson,
// as `bmaas runtime create -f` reads it), is named as its directory,
// serves known formats, passes Validate, and renders under the serving
// contract; a server script it names is in its directory (its code
// bundle).
func TestExampleRuntimesValidate(t *testing.T) {
	files, err := filepath.Glob("../../examples/runtimes/*/runtime.json")
	require.NoError(t, err)
	var names []string
	for _, f := range files {
		dir := filepath.Dir(f)
		t.Run(filepath.Base(dir), func(t *testing.T) {
			b, err := os.ReadFile(f)
			require.NoError(t, err)
			r := &gatewayv1.Runtime{}
			require.NoError(t, protojson.Unmarshal(b, r), f)
			names = append(names, r.Name)
			require.Equal(t, filepath.Base(dir), r.Name, "%s: a runtime is named as its directory", f)
			require.False(t, Builtin(r.Name), "%s: %q is a built-in runtime's name", f, r.Name)
			require.NotEmpty(t, r.Formats, f)
			for _, fm := range r.Formats {
				require.Contains(t, Formats(), fm.Name, f)
			}
			require.NoError(t, Validate("runtime.server", r.Server), f)
			_, err = os.Stat(filepath.Join(dir, "README.md"))
			require.NoError(t, err, "%s: each runtime says what it serves in README.md", f)

			args, env, err := Render(r.Server, Vars{ModelDir: "/models/bc", ModelName: "bc", ModelVersion: 3,
				HTTPPort: 8080, GRPCPort: 8081, Params: map[string]string{}, Token: "tok"})
			require.NoError(t, err, f)
			for _, a := range append(args, env...) {
				require.NotContains(t, a, "{{", f)
				require.NotContains(t, a, "<no value>", f)
			}
			for _, a := range args {
				if strings.HasSuffix(a, ".py") && !filepath.IsAbs(a) {
					_, err := os.Stat(filepath.Join(dir, a))
					require.NoError(t, err, "%s names %s, which its code bundle (%s) must hold", f, a, dir)
				}
			}
		})
	}
	for _, want := range []string{"torch-v2", "onnx-v2", "vllm", "triton"} {
		require.True(t, slices.Contains(names, want), "examples/runtimes/%s/runtime.json is missing (found %v)", want, names)
	}
}

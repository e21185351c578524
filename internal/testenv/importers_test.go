package testenv

import (
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

const embeddedPath = "github.com/bmaas/bmaas/internal/embedded"

// embeddedImporters lists the Go files below root, outside internal/app,
// internal/testenv and internal/embedded itself, that import
// internal/embedded.
func embeddedImporters(root string) ([]string, error) {
	allowed := []string{"internal/app/", "internal/testenv/", "internal/embedded/"}
	var bad []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			name := d.Name()
			if rel != "." && (strings.HasPrefix(name, ".") || name == "node_modules" || name == "testdata" || strings.HasPrefix(name, "bmaas-data")) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(rel, ".go") {
			return nil
		}
		for _, a := range allowed {
			if strings.HasPrefix(rel, a) {
				return nil
			}
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		for _, im := range f.Imports {
			if p, _ := strconv.Unquote(im.Path.Value); p == embeddedPath {
				bad = append(bad, rel)
			}
		}
		return nil
	})
	return bad, err
}

// TestOnlyAppAndTestenvImportEmbedded keeps the package doc true on the
// repository: the embedded etcd and NATS are started by internal/app and
// by this package, by nothing else.
func TestOnlyAppAndTestenvImportEmbedded(t *testing.T) {
	t.Parallel()
	bad, err := embeddedImporters(filepath.Join("..", ".."))
	require.NoError(t, err)
	require.Empty(t, bad, "internal/embedded imported outside internal/app and internal/testenv")
}

func TestEmbeddedImportersFindsEachFile(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	write := func(rel string) {
		p := filepath.Join(root, filepath.FromSlash(rel))
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte("package x\n\nimport _ \""+embeddedPath+"\"\n"), 0o644))
	}
	write("internal/app/etcd.go")
	write("internal/testenv/testenv.go")
	write("internal/embedded/etcd_test.go")
	write("services/registry/registry_test.go")
	write("tests/harness/harness.go")
	bad, err := embeddedImporters(root)
	require.NoError(t, err)
	require.ElementsMatch(t, []string{"services/registry/registry_test.go", "tests/harness/harness.go"}, bad)
}

package registry

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/bmaas/bmaas/pkg/apierr"
)

// openImport opens the regular file p for ImportModelVersion. Importing
// from the registry's disk is off unless --registry.import-roots names
// directories; p, with its symlinks resolved, must lie below one of them,
// and it is opened through an os.Root of that directory, so that neither
// ".." nor a symlink (also one swapped in after the check) leads out.
func openImport(roots []string, p string) (*os.File, error) {
	if len(roots) == 0 {
		return nil, apierr.Invalid("source_path",
			"importing files from the registry's disk is off; start the registry with --registry.import-roots naming the directories that hold models, or upload the file")
	}
	resolved, err := filepath.EvalSymlinks(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, apierr.Invalid("source_path", "%s does not exist", p)
	}
	if err != nil {
		return nil, apierr.Invalid("source_path", "cannot resolve %s: %v", p, unwrapPath(err))
	}
	for _, dir := range roots {
		root, err := filepath.EvalSymlinks(filepath.Clean(dir))
		if err != nil {
			continue
		}
		rel, err := filepath.Rel(root, resolved)
		if err != nil || rel == ".." || strings.HasPrefix(rel, "../") || rel == "." {
			continue
		}
		return openBelow(root, rel, p)
	}
	return nil, apierr.Invalid("source_path", "%s is outside the import roots (--registry.import-roots %s)", p, strings.Join(roots, ","))
}

func openBelow(root, rel, p string) (*os.File, error) {
	r, err := os.OpenRoot(root)
	if err != nil {
		return nil, apierr.Invalid("source_path", "cannot open the import root %s: %v", root, unwrapPath(err))
	}
	defer func() { _ = r.Close() }()
	f, err := r.Open(rel)
	if err != nil {
		return nil, apierr.Invalid("source_path", "cannot open %s: %v", p, unwrapPath(err))
	}
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() {
		_ = f.Close()
		return nil, apierr.Invalid("source_path", "%s is not a regular file", p)
	}
	return f, nil
}

// unwrapPath drops the path that os errors repeat.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

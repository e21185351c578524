package keyowners

import (
	"bytes"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Module is the root module's path.
const Module = "github.com/bmaas/bmaas"

// skipDirs are not scanned: generated code (api), other languages, and
// what is not source.
var skipDirs = []string{"api", "web", "sdk", "third_party", "node_modules", "testdata", "bin"}

// self is this package's directory.
const self = "internal/keyowners"

var generated = regexp.MustCompile(`(?m)^// Code generated .* DO NOT EDIT\.$`)

// Violations scans every non-generated .go file under root (the
// repository) and reports each place a file builds or parses keys of a
// layout it does not own, as "path:line: what".
func Violations(root string) ([]string, error) {
	var out []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			if rel == self {
				return filepath.SkipDir // this package's tests hold key literals as fixtures
			}
			if rel != "." && (strings.HasPrefix(d.Name(), ".") || slices.Contains(skipDirs, rel) || d.Name() == "testdata" || d.Name() == "node_modules") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(p, ".go") {
			return nil
		}
		src, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if generated.Match(src) {
			return nil
		}
		vs, err := scanFile(rel, src)
		out = append(out, vs...)
		return err
	})
	return out, err
}

func scanFile(rel string, src []byte) ([]string, error) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, rel, src, parser.SkipObjectResolution)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", rel, err)
	}
	dir := path.Dir(rel)
	imports := map[string]string{} // local name -> path below the module
	for _, im := range f.Imports {
		ip, _ := strconv.Unquote(im.Path.Value)
		local := path.Base(ip)
		if im.Name != nil {
			local = im.Name.Name
		}
		imports[local] = strings.TrimPrefix(ip, Module+"/")
	}
	var out []string
	report := func(n ast.Node, format string, args ...any) {
		out = append(out, fmt.Sprintf("%s:%d: %s", rel, fset.Position(n.Pos()).Line, fmt.Sprintf(format, args...)))
	}
	// layoutRef names the layout package e refers to (pkg.Name or
	// pkg.Func(...)) when that package is not this file's own.
	layoutRef := func(e ast.Expr) string {
		if c, ok := e.(*ast.CallExpr); ok {
			e = c.Fun
		}
		sel, ok := e.(*ast.SelectorExpr)
		if !ok {
			return ""
		}
		x, ok := sel.X.(*ast.Ident)
		if !ok {
			return ""
		}
		ip := imports[x.Name]
		if !slices.Contains(LayoutPackages, ip) || ip == dir {
			return ""
		}
		return x.Name + "." + sel.Sel.Name
	}
	ast.Inspect(f, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.BasicLit:
			if n.Kind != token.STRING {
				return true
			}
			s, err := strconv.Unquote(n.Value)
			if err != nil {
				return true
			}
			for _, kind := range kindsIn(s) {
				if kind == "" {
					continue // the bare root: no layout's
				}
				if owner, known := Layouts[kind]; !known {
					report(n, "key literal %q of a layout missing from keyowners.Layouts", s)
				} else if owner != dir {
					report(n, "key literal %q: the layout %q belongs to %s", s, Root+kind, owner)
				}
			}
		case *ast.CallExpr:
			if sel, ok := n.Fun.(*ast.SelectorExpr); ok {
				if x, ok := sel.X.(*ast.Ident); ok && imports[x.Name] == "pkg/store" && sel.Sel.Name == "Key" && len(n.Args) > 0 {
					if lit, ok := n.Args[0].(*ast.BasicLit); ok && lit.Kind == token.STRING {
						kind, _ := strconv.Unquote(lit.Value)
						if owner, known := Layouts[kind]; !known {
							report(n, "store.Key(%s) of a layout missing from keyowners.Layouts", lit.Value)
						} else if owner != dir {
							report(n, "store.Key(%s): the layout %q belongs to %s", lit.Value, Root+kind, owner)
						}
					}
				}
				if x, ok := sel.X.(*ast.Ident); ok && imports[x.Name] == "strings" {
					for _, a := range n.Args {
						if ref := layoutRef(a); ref != "" {
							report(n, "strings.%s on %s parses keys by hand; use its package's parser", sel.Sel.Name, ref)
						}
					}
				}
			}
		case *ast.BinaryExpr:
			if n.Op != token.ADD {
				return true
			}
			for _, e := range []ast.Expr{n.X, n.Y} {
				if ref := layoutRef(e); ref != "" {
					report(n, "%s + ... builds a key by hand; use its package's builder", ref)
				}
			}
		}
		return true
	})
	return out, nil
}

// kindsIn returns the layout kind of each key prefix in s ("" for the
// bare root).
func kindsIn(s string) []string {
	var kinds []string
	for {
		i := strings.Index(s, Root)
		if i < 0 {
			return kinds
		}
		s = s[i+len(Root):]
		kind, _, _ := strings.Cut(s, "/")
		if j := bytes.IndexFunc([]byte(kind), func(r rune) bool {
			return !(r == '-' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9')
		}); j >= 0 {
			kind = kind[:j]
		}
		kinds = append(kinds, kind)
	}
}

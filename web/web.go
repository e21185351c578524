// Package web is the console: static HTML, CSS and JavaScript modules,
// embedded in the binary and served by the HTTP edge under /ui/. The
// pages call the REST API of the same edge; nothing is built or fetched
// from elsewhere.
package web

import (
	"embed"
	"io/fs"
	"net/http"
	"strings"
)

//go:embed static
var static embed.FS

// FS holds the console's files with index.html at its root.
func FS() fs.FS {
	sub, err := fs.Sub(static, "static")
	if err != nil { // only on a malformed embed pattern, caught by the tests
		panic(err)
	}
	return sub
}

// csp lets the console load only its own files and call only its own
// origin.
const csp = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"

// Handler serves the console mounted at prefix (ending in "/"): prefix
// itself answers index.html and every other path a file of FS. The files
// are revalidated on each load, so a new binary's console shows at once.
func Handler(prefix string) http.Handler {
	files := http.FileServerFS(FS())
	return http.StripPrefix(strings.TrimSuffix(prefix, "/"), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Cache-Control", "no-cache")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Content-Security-Policy", csp)
		h.Set("Referrer-Policy", "no-referrer")
		if r.URL.Path != "/" && strings.HasSuffix(r.URL.Path, "/") { // no directory listings
			http.NotFound(w, r)
			return
		}
		files.ServeHTTP(w, r)
	}))
}

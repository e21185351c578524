package app

import (
	"net/http"
	"net/url"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/bmaas/bmaas/pkg/iam"
)

// qualifiedPaths lets a REST path name another project's resource:
// "/v1/models/vision%2Ffraud" is "/v1/models/fraud" in project vision
// (the Bmaas-Project header), since the REST routes' {name} is one path
// segment and the gateway's router splits on an escaped slash too. A
// path naming two projects is refused.
func qualifiedPaths(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw := r.URL.RawPath
		if raw == "" || !strings.Contains(strings.ToUpper(raw), "%2F") {
			next.ServeHTTP(w, r)
			return
		}
		segs := strings.Split(raw, "/")
		project := ""
		for i, s := range segs {
			u, err := url.PathUnescape(s)
			if err != nil {
				continue
			}
			p, bare, ok := strings.Cut(u, "/")
			if !ok {
				continue
			}
			if project != "" && p != project {
				writeHTTPError(w, r, http.StatusBadRequest, status.Newf(codes.InvalidArgument,
					"path: a path names one project, not %q and %q", project, p))
				return
			}
			project, segs[i] = p, url.PathEscape(bare)
		}
		r2 := r.Clone(r.Context())
		r2.URL.RawPath = strings.Join(segs, "/")
		r2.URL.Path, _ = url.PathUnescape(r2.URL.RawPath)
		r2.Header.Set(iam.ProjectHeader, project)
		next.ServeHTTP(w, r2)
	})
}

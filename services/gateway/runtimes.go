package gateway

import (
	"cmp"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	gatewayv1 "github.com/bmaas/bmaas/api/bmaas/gateway/v1"
	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
	"github.com/bmaas/bmaas/pkg/apierr"
	"github.com/bmaas/bmaas/pkg/iam"
	"github.com/bmaas/bmaas/pkg/runtimes"
	"github.com/bmaas/bmaas/pkg/store"
)

// maxTerminationGrace bounds a runtime's termination_grace_seconds.
const maxTerminationGrace = 3600

// runtimeKey is where a stored runtime lives: its name qualified by its
// project. The default project's runtimes (and the built-in ones) serve
// every project; another project's, only its own deployments.
func runtimeKey(name string) string { return store.Key("runtimes", iam.NameKey(name)) }

// runtimeVisible says whether a deployment of project may run r.
func runtimeVisible(r *gatewayv1.Runtime, project string) bool {
	p := iam.ProjectOfName(r.GetName())
	return p == iam.DefaultProject || p == project
}

// validateRuntime checks a runtime as a user declares it; errors name the
// field they typed (runtime.formats[1].name, runtime.server.command, ...).
func validateRuntime(r *gatewayv1.Runtime) error {
	if r == nil {
		return apierr.Invalid("runtime", "required")
	}
	_, bare := iam.SplitName(r.Name)
	if err := iam.CheckQualifiedMatch("runtime.name", r.Name, nameRE); err != nil {
		return err
	}
	switch {
	case runtimes.Builtin(bare):
		return apierr.Invalid("runtime.name", "%q is a built-in runtime", r.Name)
	case len(r.Formats) == 0:
		return apierr.Invalid("runtime.formats", "required: one or more of %s", strings.Join(runtimes.Formats(), ", "))
	}
	for i, f := range r.Formats {
		if !slices.Contains(runtimes.Formats(), f.GetName()) {
			return apierr.Invalid(fmt.Sprintf("runtime.formats[%d].name", i), "unknown format %q: one of %s", f.GetName(), strings.Join(runtimes.Formats(), ", "))
		}
		if slices.IndexFunc(r.Formats, func(o *gatewayv1.RuntimeFormat) bool { return o.GetName() == f.GetName() }) != i {
			return apierr.Invalid(fmt.Sprintf("runtime.formats[%d].name", i), "%q given twice", f.GetName())
		}
	}
	if err := runtimes.Validate("runtime.server", r.Server); err != nil {
		return err
	}
	if res := r.Resources; res != nil {
		for _, f := range []struct {
			name string
			v    int64
		}{{"cpu_millis", int64(res.CpuMillis)}, {"cpu_limit_millis", int64(res.CpuLimitMillis)},
			{"memory_bytes", res.MemoryBytes}, {"gpus", int64(res.Gpus)}, {"gpu_memory_bytes", res.GpuMemoryBytes}} {
			if f.v < 0 {
				return apierr.Invalid("runtime.resources."+f.name, "must not be negative, got %d", f.v)
			}
		}
	}
	if r.TerminationGraceSeconds < 0 || r.TerminationGraceSeconds > maxTerminationGrace {
		return apierr.Invalid("runtime.termination_grace_seconds", "must be within 0 and %d, got %d", maxTerminationGrace, r.TerminationGraceSeconds)
	}
	return nil
}

// CreateRuntime stores a new serving runtime.
func (s *Service) CreateRuntime(ctx context.Context, r *gatewayv1.Runtime) (*gatewayv1.Runtime, error) {
	if err := validateRuntime(r); err != nil {
		return nil, err
	}
	if err := iam.ProjectExists(ctx, s.st, "runtime.name", iam.ProjectOfName(r.GetName())); err != nil {
		return nil, err
	}
	if err := s.checkBundle(ctx, r.GetServer().GetCodeBundleSha256()); err != nil {
		return nil, err
	}
	r = proto.Clone(r).(*gatewayv1.Runtime)
	r.Builtin, r.Etag, r.CreateTime = false, "", timestamppb.New(s.now())
	rev, err := s.st.Commit(ctx, []store.Cond{{Key: runtimeKey(r.Name)}}, store.Put(runtimeKey(r.Name), r))
	if store.IsStale(err) {
		return nil, apierr.AlreadyExists("runtime", r.Name)
	}
	if err != nil {
		return nil, err
	}
	r.Etag = store.Etag(rev)
	return r, nil
}

// GetRuntime returns a runtime, built in or stored: a project's own of
// that name, else the default project's.
func (s *Service) GetRuntime(ctx context.Context, name string) (*gatewayv1.Runtime, error) {
	r, _, err := s.getRuntime(ctx, name)
	if project, bare := iam.SplitName(name); errors.Is(err, apierr.ErrNotFound) && project != iam.DefaultProject {
		if r, _, err2 := s.getRuntime(ctx, bare); err2 == nil {
			return r, nil
		}
	}
	return r, err
}

// getRuntime returns a runtime and its revision (0 for a built-in one).
func (s *Service) getRuntime(ctx context.Context, name string) (*gatewayv1.Runtime, int64, error) {
	if name == "" {
		return nil, 0, apierr.Invalid("name", "required")
	}
	for _, b := range runtimes.BuiltinRuntimes() {
		if b.Name == name {
			return b, 0, nil
		}
	}
	if _, bare := iam.SplitName(name); runtimes.Builtin(bare) {
		return nil, 0, apierr.NotFound("runtime", name)
	}
	r := &gatewayv1.Runtime{}
	rev, err := s.st.Get(ctx, runtimeKey(name), r)
	if errors.Is(err, store.ErrNotFound) {
		return nil, 0, apierr.NotFound("runtime", name)
	}
	if err != nil {
		return nil, 0, err
	}
	r.Etag = store.Etag(rev)
	return r, rev, nil
}

// Page tokens of ListRuntimes: the next built-in's index, or the store's
// token for the stored runtimes.
const (
	tokenBuiltin = "b:"
	tokenStored  = "s:"
)

// ListRuntimes pages through the runtimes the call's project may run:
// the built-in ones first, then the stored ones (the default project's
// and its own) by name.
func (s *Service) ListRuntimes(ctx context.Context, req *gatewayv1.ListRuntimesRequest) (*gatewayv1.ListRuntimesResponse, error) {
	n, err := store.PageSize("page_size", req.GetPageSize())
	if err != nil {
		return nil, err
	}
	from, storeToken, err := parseRuntimeToken(req.GetPageToken())
	if err != nil {
		return nil, err
	}
	out := &gatewayv1.ListRuntimesResponse{}
	builtins := runtimes.BuiltinRuntimes()
	for i := from; i < len(builtins); i++ {
		if len(out.Runtimes) == n {
			out.NextPageToken = runtimeToken(tokenBuiltin + strconv.Itoa(i))
			return out, nil
		}
		out.Runtimes = append(out.Runtimes, builtins[i])
	}
	project := iam.ProjectFrom(ctx)
	items, next, err := s.storedRuntimes(ctx, max(n-len(out.Runtimes), 1), storeToken,
		func(r *gatewayv1.Runtime) bool { return runtimeVisible(r, project) })
	if err != nil {
		return nil, err
	}
	if len(out.Runtimes) == n {
		if len(items) > 0 {
			out.NextPageToken = runtimeToken(tokenStored)
		}
		return out, nil
	}
	out.Runtimes = append(out.Runtimes, items...)
	if next != "" {
		out.NextPageToken = runtimeToken(tokenStored + next)
	}
	return out, nil
}

// storedRuntimes lists a page of the runtimes in the store that keep
// accepts (nil: all).
func (s *Service) storedRuntimes(ctx context.Context, n int, token string, keep func(*gatewayv1.Runtime) bool) ([]*gatewayv1.Runtime, string, error) {
	items, next, err := store.List(ctx, s.st, runtimeKey(""), n, token,
		func() *gatewayv1.Runtime { return &gatewayv1.Runtime{} }, keep)
	if err != nil {
		return nil, "", err
	}
	out := make([]*gatewayv1.Runtime, len(items))
	for i, it := range items {
		it.Msg.Etag = store.Etag(it.Rev)
		out[i] = it.Msg
	}
	return out, next, nil
}

func runtimeToken(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// parseRuntimeToken returns where a page starts: a built-in's index, or
// (past the built-ins) the store's token.
func parseRuntimeToken(token string) (int, string, error) {
	if token == "" {
		return 0, "", nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		return 0, "", apierr.Invalid("page_token", "malformed page token")
	}
	if st, ok := strings.CutPrefix(string(raw), tokenStored); ok {
		return len(runtimes.BuiltinRuntimes()), st, nil
	}
	if i, ok := strings.CutPrefix(string(raw), tokenBuiltin); ok {
		if n, err := strconv.Atoi(i); err == nil && n >= 0 && n < len(runtimes.BuiltinRuntimes()) {
			return n, "", nil
		}
	}
	return 0, "", apierr.Invalid("page_token", "malformed page token")
}

// useRuntime is what a deployment's write adds when it takes a stored
// runtime: the condition that the runtime is as it was read, and a write
// of it as it is, which moves its revision. A DeleteRuntime that listed
// the deployments before that write then fails its own condition and
// looks again; a built-in runtime needs neither.
func useRuntime(rt *gatewayv1.Runtime) ([]store.Cond, []store.Op) {
	rev, err := store.ParseEtag("runtime.etag", rt.GetEtag())
	if rt.GetBuiltin() || err != nil || rev == 0 {
		return nil, nil
	}
	same := proto.Clone(rt).(*gatewayv1.Runtime)
	same.Etag = ""
	return []store.Cond{{Key: runtimeKey(rt.Name), Rev: rev}}, []store.Op{store.Put(runtimeKey(rt.Name), same)}
}

// DeleteRuntime removes a stored runtime; it refuses while a deployment
// names it or runs it, and for the built-in ones. It first writes the
// runtime as it is, then lists the deployments, then deletes it on the
// condition that nothing wrote it meanwhile: a deployment that takes it
// concurrently (useRuntime) makes it look again.
func (s *Service) DeleteRuntime(ctx context.Context, name string) error {
	if runtimes.Builtin(name) {
		return apierr.Precondition("runtime %q is built in and cannot be deleted", name)
	}
	for attempt := 0; ; attempt++ {
		r, rev, err := s.getRuntime(ctx, name)
		if err != nil {
			return err
		}
		r.Etag = ""
		rev, err = s.st.Commit(ctx, []store.Cond{{Key: runtimeKey(name), Rev: rev}}, store.Put(runtimeKey(name), r))
		if store.IsStale(err) && attempt < 10 {
			continue
		}
		if err != nil {
			return err
		}
		if err := s.unused(ctx, name); err != nil {
			return err
		}
		_, err = s.st.Commit(ctx, []store.Cond{{Key: runtimeKey(name), Rev: rev}}, store.Delete(runtimeKey(name)))
		if store.IsStale(err) && attempt < 10 {
			continue
		}
		return err
	}
}

// unused is a FailedPrecondition naming the deployments that name the
// runtime or run it, nil when none does.
func (s *Service) unused(ctx context.Context, name string) error {
	deps, _, err := store.List(ctx, s.st, deploymentKey(""), 10000, "",
		func() *gatewayv1.Deployment { return &gatewayv1.Deployment{} },
		func(d *gatewayv1.Deployment) bool {
			return d.GetStatus().GetRuntime() == name || d.Runtime != "" &&
				(d.Runtime == name || iam.QualifiedName(iam.ProjectOfName(d.Name), d.Runtime) == name)
		})
	if err != nil || len(deps) == 0 {
		return err
	}
	names := make([]string, len(deps))
	for i, d := range deps {
		names[i] = d.Msg.Name
	}
	return apierr.Precondition("runtime %q is used by deployment %s; delete them or move them to another runtime first",
		name, strings.Join(names, ", "))
}

// allRuntimes returns the built-in runtimes and the stored ones.
func (s *Service) allRuntimes(ctx context.Context) ([]*gatewayv1.Runtime, error) {
	stored, _, err := s.storedRuntimes(ctx, 10000, "", nil)
	if err != nil {
		return nil, err
	}
	return append(runtimes.BuiltinRuntimes(), stored...), nil
}

// priority is r's priority for format, and whether r serves it.
func priority(r *gatewayv1.Runtime, format string) (int32, bool) {
	for _, f := range r.GetFormats() {
		if f.GetName() == format {
			return f.GetPriority(), true
		}
	}
	return 0, false
}

// chooseRuntime picks the runtime of a deployment of project serving a
// version of format, among those the project may run: the one it names,
// which must serve the format, or else the highest priority runtime
// serving it (ties broken by name). what describes the version for
// messages ("version 3 of bc").
func chooseRuntime(all []*gatewayv1.Runtime, project, named, format, what string) (*gatewayv1.Runtime, error) {
	all = slices.DeleteFunc(slices.Clone(all), func(r *gatewayv1.Runtime) bool { return !runtimeVisible(r, project) })
	if named != "" {
		// The project's own runtime of that name, else the default
		// project's (or a built-in one).
		i := slices.IndexFunc(all, func(r *gatewayv1.Runtime) bool { return r.Name == iam.QualifiedName(project, named) })
		if i < 0 {
			i = slices.IndexFunc(all, func(r *gatewayv1.Runtime) bool { return r.Name == named })
		}
		if i < 0 {
			return nil, fmt.Errorf("deployment.runtime: runtime %q %w", named, apierr.ErrNotFound)
		}
		if _, ok := priority(all[i], format); !ok {
			return nil, apierr.Invalid("deployment.runtime", "runtime %q serves %s, not %s (%s is %s)",
				named, formatNames(all[i]), format, what, format)
		}
		return all[i], nil
	}
	var best *gatewayv1.Runtime
	var bestP int32
	for _, r := range all {
		p, ok := priority(r, format)
		if !ok {
			continue
		}
		if best == nil || p > bestP || (p == bestP && r.Name < best.Name) {
			best, bestP = r, p
		}
	}
	if best == nil {
		return nil, apierr.Invalid("deployment.model", "no runtime serves %s (%s is %s); runtimes serve %s: create a runtime for %s",
			format, what, format, servedFormats(all), format)
	}
	return best, nil
}

// formatNames lists the formats r serves: "pytorch, other".
func formatNames(r *gatewayv1.Runtime) string {
	names := make([]string, len(r.GetFormats()))
	for i, f := range r.GetFormats() {
		names[i] = f.GetName()
	}
	return strings.Join(names, ", ")
}

// servedFormats says which runtimes serve which formats: "native (native),
// onnx (onnx)".
func servedFormats(all []*gatewayv1.Runtime) string {
	parts := make([]string, len(all))
	for i, r := range slices.SortedFunc(slices.Values(all), func(a, b *gatewayv1.Runtime) int { return cmp.Compare(a.Name, b.Name) }) {
		parts[i] = fmt.Sprintf("%s (%s)", r.Name, formatNames(r))
	}
	return strings.Join(parts, ", ")
}

// checkBundle refuses a runtime whose code bundle the registry does not
// hold: every replica of it would fail.
func (s *Service) checkBundle(ctx context.Context, sha string) error {
	if sha == "" {
		return nil
	}
	reg, err := s.registry()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel() // ends the download after its first message
	st, err := reg.DownloadBundle(ctx, &registryv1.DownloadBundleRequest{Sha256: sha})
	if err == nil {
		_, err = st.Recv()
	}
	switch status.Code(err) {
	case codes.OK:
		return nil
	case codes.NotFound, codes.InvalidArgument:
		return apierr.Invalid("runtime.server.code_bundle_sha256", "no code bundle %s in the registry (bmaas runtime create --code DIR uploads one)", sha)
	}
	return err
}

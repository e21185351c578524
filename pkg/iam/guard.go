package iam

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	evaluatorv1 "github.com/bmaas/bmaas/api/bmaas/evaluator/v1"
	iamv1 "github.com/bmaas/bmaas/api/bmaas/iam/v1"
	schedulerv1 "github.com/bmaas/bmaas/api/bmaas/scheduler/v1"
	"github.com/bmaas/bmaas/api/inference"
	"github.com/bmaas/bmaas/pkg/apierr"
	"github.com/bmaas/bmaas/pkg/authz"
	"github.com/bmaas/bmaas/pkg/grpcsrv"
	"github.com/bmaas/bmaas/pkg/store"
)

// Metadata the platform's own processes send along a call they make for
// a caller (the HTTP edge, a process forwarding a call it does not
// serve): the caller's Authorization value and address. A server trusts
// them only from a System caller.
const (
	OnBehalfOfKey    = "bmaas-on-behalf-of"
	ClientAddressKey = "bmaas-client-address"
)

// ProjectHeader names the project a call works in, when its request
// names none (as OpenAI-Project does): gRPC metadata bmaas-project, HTTP
// header Bmaas-Project. Without it a call works in its caller's project.
const ProjectHeader = "bmaas-project"

// Guard authenticates every call, authorizes it by pkg/authz's table
// and records it in the audit trail: one interceptor for gRPC, one
// middleware for the HTTP edge's routes of their own.
type Guard struct {
	auth  *Authority
	audit *Auditor
	// local says whether this process serves a method itself; a call it
	// forwards is authorized and audited where it is served.
	local func(method string) bool
	// limits, when set, bounds each identity's calls (SetLimits).
	limits *Limits
}

// SetLimits bounds each identity's calls to this process (nil: no
// bound). Set before the server starts.
func (g *Guard) SetLimits(l *Limits) { g.limits = l }

// overLimit is the refusal of a caller's own call over its identity's
// limit, and how long to wait; nil when the call may run. The mesh and
// calls another process forwards are not counted here.
func (g *Guard) overLimit(c *Caller) (*status.Status, time.Duration) {
	if g.limits == nil || c.Principal == nil || c.Principal == System || c.forwarded {
		return nil, 0
	}
	if ok, wait := g.limits.Allow(c.Principal.Identity); !ok {
		return g.limits.refusal(c.Principal.Identity, wait), wait
	}
	return nil, 0
}

// NewGuard guards with auth, recording in audit (nil: no trail); local
// (nil: every method) says which methods this process serves.
func NewGuard(auth *Authority, audit *Auditor, local func(method string) bool) *Guard {
	if local == nil {
		local = func(string) bool { return true }
	}
	return &Guard{auth: auth, audit: audit, local: local}
}

// Caller is who a call comes from, as the guard found.
type Caller struct {
	Principal *Principal
	// Authorization is the caller's own Authorization value, which the
	// platform forwards as OnBehalfOfKey.
	Authorization string
	// Address is where the call came from (the first client's, through
	// the edge and the mesh).
	Address string
	// Project is the project the call works in (resources that carry
	// their project): its request's, else its header's, else the
	// caller's own.
	Project string
	// forwarded is set for a call the mesh makes for a caller: it was
	// counted against the caller's limit where it came in.
	forwarded bool
}

// ProjectFrom is the project a call works in: the one the guard found,
// else its header's, else its caller's.
func ProjectFrom(ctx context.Context) string {
	if p := headerProject(ctx); p != "" {
		return p
	}
	return FromContext(ctx).DefaultProject()
}

// headerProject is the project the guard found for the call, else the
// one its header names ("" for none).
func headerProject(ctx context.Context) string {
	if c := CallerFrom(ctx); c != nil && c.Project != "" {
		return c.Project
	}
	if v := metadata.ValueFromIncomingContext(ctx, ProjectHeader); len(v) > 0 {
		return v[0]
	}
	return ""
}

// projectNamer is a request that names its project.
type projectNamer interface{ GetProject() string }

// projectOf is the project a request names ("" when none): its own
// project field, or its spec's.
func projectOf(req any) string {
	if r, ok := req.(projectNamer); ok {
		return r.GetProject()
	}
	if r, ok := req.(interface{ GetSpec() *schedulerv1.JobSpec }); ok {
		return r.GetSpec().GetProject()
	}
	if r, ok := req.(interface {
		GetExperiment() *evaluatorv1.Experiment
	}); ok {
		return r.GetExperiment().GetProject()
	}
	return ""
}

type callerKey struct{}

// WithCaller is ctx carrying c.
func WithCaller(ctx context.Context, c *Caller) context.Context {
	return context.WithValue(ctx, callerKey{}, c)
}

// CallerFrom is the caller the guard put in ctx (nil when none).
func CallerFrom(ctx context.Context) *Caller {
	c, _ := ctx.Value(callerKey{}).(*Caller)
	return c
}

// FromContext is the principal a call runs as (nil: anonymous, when the
// platform asks no token).
func FromContext(ctx context.Context) *Principal {
	if c := CallerFrom(ctx); c != nil {
		return c.Principal
	}
	return nil
}

// Authenticate finds the caller of a gRPC call from its metadata.
func (g *Guard) Authenticate(ctx context.Context) (*Caller, error) {
	c := &Caller{}
	if !g.auth.Enabled() {
		return c, nil
	}
	var err error = ErrUnauthenticated
	for _, v := range metadata.ValueFromIncomingContext(ctx, "authorization") {
		if c.Principal, err = g.auth.Authenticate(v); err == nil {
			c.Authorization = v
			break
		}
	}
	if err != nil {
		return c, err
	}
	if c.Principal == System {
		if v := metadata.ValueFromIncomingContext(ctx, OnBehalfOfKey); len(v) > 0 {
			c.Authorization = v[0]
			if a := metadata.ValueFromIncomingContext(ctx, ClientAddressKey); len(a) > 0 {
				c.Address = a[0]
			}
			c.Principal, err = g.auth.Authenticate(v[0])
			c.forwarded = true
		}
	}
	return c, err
}

// Check says whether the caller of the gRPC call in ctx is known.
func (g *Guard) Check(ctx context.Context) error {
	_, err := g.Authenticate(ctx)
	return err
}

// authError is the status of an authentication failure.
func authError(err error) error {
	if NotLoaded(err) {
		return status.Error(codes.Unavailable, err.Error())
	}
	return status.Error(codes.Unauthenticated, "missing or invalid bearer token")
}

// Unary is the gRPC unary interceptor.
func (g *Guard) Unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	if info.FullMethod == loginMethod {
		return g.signIn(ctx, req, h)
	}
	if authz.Public(info.FullMethod) {
		return h(ctx, req)
	}
	c, err := g.Authenticate(ctx)
	if err != nil {
		g.record(ctx, c, info.FullMethod, authz.Permission{}, "", req, codes.Unauthenticated, "")
		return nil, authError(err)
	}
	if st, _ := g.overLimit(c); st != nil {
		return nil, st.Err()
	}
	ctx = WithCaller(ctx, c)
	if !g.local(info.FullMethod) {
		return h(ctx, req)
	}
	perm, project, err := g.authorize(ctx, c, info.FullMethod, req)
	if err != nil {
		return nil, err
	}
	resp, err := h(ctx, req)
	if perm.Mutates() {
		g.record(ctx, c, info.FullMethod, perm, project, req, apierr.Code(err), errMessage(err))
	}
	return resp, err
}

// Stream is the gRPC stream interceptor: the method's permission, as
// its request is not read yet.
func (g *Guard) Stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	if authz.Public(info.FullMethod) {
		return h(srv, ss)
	}
	ctx := ss.Context()
	c, err := g.Authenticate(ctx)
	if err != nil {
		g.record(ctx, c, info.FullMethod, authz.Permission{}, "", nil, codes.Unauthenticated, "")
		return authError(err)
	}
	if st, _ := g.overLimit(c); st != nil {
		return st.Err()
	}
	cs := &callerStream{ServerStream: ss, ctx: WithCaller(ctx, c)}
	if !g.local(info.FullMethod) {
		// Forwarded: authorized where it is served.
		cs.authorized = true
		return h(srv, cs)
	}
	perm, ok := authz.For(info.FullMethod, nil)
	if !ok || !(perm.ProjectAware() || perm.Named()) {
		// The method's permission is all there is to decide.
		if perm, cs.project, err = g.authorize(cs.ctx, c, info.FullMethod, nil); err != nil {
			return err
		}
		cs.authorized = true
	} else {
		// Decided on the stream's first message, which names the
		// project (a download's model, an upload's header).
		cs.first = func(m any) error {
			var err error
			perm, cs.project, err = g.authorize(cs.ctx, c, info.FullMethod, m)
			return err
		}
	}
	err = h(srv, cs)
	if perm.Mutates() && !cs.refused {
		g.record(cs.ctx, c, info.FullMethod, perm, cs.project, nil, apierr.Code(err), errMessage(err))
	}
	return err
}

const loginMethod = "/bmaas.iam.v1.IAMService/Login"

// signIn runs a sign-in (public: who signs in has no token yet) and
// records it in the trail as the person it names, or as refused.
func (g *Guard) signIn(ctx context.Context, req any, h grpc.UnaryHandler) (any, error) {
	resp, err := h(ctx, req)
	c := &Caller{}
	if r, ok := resp.(*iamv1.LoginResponse); ok && err == nil {
		c.Principal, _ = NewPrincipal(r.GetToken())
	}
	perm := authz.Permission{Resource: "tokens", Verb: authz.Write}
	g.record(ctx, c, loginMethod, perm, "", nil, apierr.Code(err), errMessage(err))
	return resp, err
}

// callerStream is a guarded stream: its context carries the caller,
// and, where the method's project is in its request, its first message
// is authorized before the handler sees it (and nothing is sent before).
type callerStream struct {
	grpc.ServerStream
	ctx        context.Context
	first      func(m any) error
	authorized bool
	refused    bool // its request was refused (and recorded so)
	project    string
}

func (s *callerStream) Context() context.Context { return s.ctx }

func (s *callerStream) RecvMsg(m any) error {
	err := s.ServerStream.RecvMsg(m)
	if s.authorized || err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	if err != nil {
		// A stream that ends before its request: the method's own
		// permission, in the caller's project.
		m = nil
	}
	s.authorized = true
	if err := s.first(m); err != nil {
		s.first = func(any) error { return err }
		s.authorized, s.refused = false, true
		return err
	}
	return err
}

func (s *callerStream) SendMsg(m any) error {
	if !s.authorized {
		return status.Error(codes.PermissionDenied, "a stream sends nothing before its request is authorized")
	}
	return s.ServerStream.SendMsg(m)
}

// authorize checks c may call method with req, recording a refusal.
func (g *Guard) authorize(ctx context.Context, c *Caller, method string, req any) (authz.Permission, string, error) {
	perm, ok := authz.For(method, req)
	if !ok {
		// Not a method of the API (the table has every one, and a test
		// fails on one without an entry): never run, and answered as gRPC
		// answers an unknown method.
		g.record(ctx, c, method, perm, "", req, codes.Unimplemented, "no permission entry")
		return perm, "", status.Errorf(codes.Unimplemented, "unknown method %s", method)
	}
	project := ""
	switch {
	case perm.ProjectAware():
		project = projectOf(req)
		if project == "" {
			project = ProjectFrom(ctx)
		}
	case perm.Named():
		n := ""
		if _, raw := req.(*grpcsrv.RawFrame); !raw || c.Principal != nil {
			// (Anonymous, the gateway qualifies an undecoded request's
			// name itself: not scanned twice.)
			n = deploymentOf(req)
		}
		if n == "" {
			n = primaryName(asMessage(req))
		}
		if strings.Contains(n, "/") {
			project = ProjectOfName(n)
		} else {
			project = ProjectFrom(ctx)
		}
	case !perm.ClusterScoped():
		project = DefaultProject
	}
	var others []string
	if !qualifyInference(req, project) {
		if m := asMessage(req); m != nil && !perm.ClusterScoped() {
			others = qualifyRequest(m, project, namesItself[perm.Resource])
		}
	}
	if hdr := headerProject(ctx); hdr != "" && hdr == project && !g.auth.ProjectKnown(ctx, project) {
		msg := fmt.Sprintf("%s: no project %q (the project header: --project, BMAAS_PROJECT, or the context's)", ProjectHeader, project)
		g.record(ctx, c, method, perm, project, req, codes.InvalidArgument, msg)
		return perm, project, status.Error(codes.InvalidArgument, msg)
	}
	if perm.ProjectAware() || perm.Named() {
		c.Project = project
		// What a request needs may depend on the names it holds, now
		// qualified (a project's runtime, or the cluster's).
		perm, _ = authz.For(method, req)
	}
	if err := g.decide(ctx, c, method, perm, project, req); err != nil {
		return perm, project, err
	}
	// What the request names in other projects, the caller must at least
	// see there (a job in one project training on another's dataset).
	for _, p := range others {
		if err := g.decide(ctx, c, method, authz.Permission{Resource: perm.Resource, Verb: authz.Read}, p, req); err != nil {
			return perm, project, err
		}
	}
	return perm, project, nil
}

// asMessage is req as a message (nil for none).
func asMessage(req any) proto.Message {
	m, _ := req.(proto.Message)
	return m
}

// namesItself are the resources whose requests' "name" is their own
// (qualified with the call's project, as their references are).
var namesItself = map[string]bool{"models": true, "datasets": true, "deployments": true, "alert-rules": true, "runtimes": true}

// qualifyInference qualifies the deployment an inference request names
// (without reflection: it is the hot path), and says whether req is one.
func qualifyInference(req any, project string) bool {
	name := inferenceName(req)
	if name != nil {
		*name = QualifiedName(project, *name)
	}
	return name != nil
}

// inferenceName is the deployment field of a decoded KServe v2 request
// (nil for another request).
func inferenceName(req any) *string {
	switch r := req.(type) {
	case *inference.ModelInferRequest:
		return &r.ModelName
	case *inference.ModelMetadataRequest:
		return &r.Name
	case *inference.ModelReadyRequest:
		return &r.Name
	}
	return nil
}

// decide checks c may do perm in project, recording a refusal.
func (g *Guard) decide(ctx context.Context, c *Caller, method string, perm authz.Permission, project string, req any) error {
	if c.Principal == nil {
		return nil // the platform asks no token: anyone may do anything
	}
	_, deployment := SplitName(deploymentOf(req))
	switch c.Principal.Decide(perm, project, deployment) {
	case Deny:
		msg := fmt.Sprintf("%s may not %s in project %q", c.Principal.Name(), perm, project)
		if project == "" {
			msg = fmt.Sprintf("%s may not %s", c.Principal.Name(), perm)
		}
		g.record(ctx, c, method, perm, project, req, codes.PermissionDenied, msg)
		return status.Error(codes.PermissionDenied, msg)
	case Hide:
		g.record(ctx, c, method, perm, project, req, codes.NotFound, "no role in the project")
		return status.Errorf(codes.NotFound, "%s not found", describe(perm, req))
	}
	return nil
}

// deploymentOf is the deployment an inference or feedback call names.
func deploymentOf(req any) string {
	if name := inferenceName(req); name != nil {
		return *name
	}
	switch r := req.(type) {
	case *grpcsrv.RawFrame:
		// The gateway's ModelInfer, undecoded: its model_name.
		name, _, _ := grpcsrv.ScanStrings(r.Bytes(), 1, 2)
		return name
	case *evaluatorv1.SubmitFeedbackRequest:
		return r.GetDeployment()
	}
	return ""
}

// describe names what a hidden call was about, as a NotFound says it.
func describe(perm authz.Permission, req any) string {
	if m, ok := req.(proto.Message); ok {
		if r := resourceOf(m); r != "" {
			return strings.TrimSuffix(perm.Resource, "s") + " " + r
		}
	}
	return perm.Resource
}

func errMessage(err error) string {
	if err == nil {
		return ""
	}
	return status.Convert(apierr.ToStatus(err)).Message()
}

// address is the caller's address: the one the platform forwarded, or
// the gRPC peer's.
func address(ctx context.Context, c *Caller) string {
	if c != nil && c.Address != "" {
		return c.Address
	}
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		return p.Addr.String()
	}
	return ""
}

// HTTP guards the HTTP edge: a request to a path public does not accept
// must carry a live token (401 through deny otherwise, with
// WWW-Authenticate); the caller goes in the request's context, for the
// calls the edge makes on its behalf; and a route of its own (pattern
// names it, as registered) is authorized here by authz.RouteFor, 403 or
// 404 through deny. Generated routes are authorized by the gRPC methods
// they call.
func (g *Guard) HTTP(public func(path string) bool, pattern func(*http.Request) string,
	deny func(http.ResponseWriter, *http.Request, int, *status.Status), next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if public(r.URL.Path) {
			next.ServeHTTP(w, r)
			return
		}
		c := &Caller{Address: r.RemoteAddr, Project: r.Header.Get(ProjectHeader)}
		if g.auth.Enabled() {
			p, err := g.auth.Authenticate(r.Header.Get("Authorization"))
			if err != nil {
				g.recordHTTP(r, c, r.Method+" "+r.URL.Path, authz.Permission{}, "", codes.Unauthenticated, "")
				w.Header().Set("WWW-Authenticate", "Bearer")
				st := status.Convert(authError(err))
				deny(w, r, apierr.HTTPStatus(st.Code()), st)
				return
			}
			c.Principal, c.Authorization = p, r.Header.Get("Authorization")
			if st, wait := g.overLimit(c); st != nil {
				w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
				deny(w, r, http.StatusTooManyRequests, st)
				return
			}
		}
		r = r.WithContext(WithCaller(r.Context(), c))
		if c.Principal == nil {
			next.ServeHTTP(w, r) // asks no token: anyone may do anything
			return
		}
		route := pattern(r)
		if perm, ok := authz.RouteFor(route); ok && !(perm.Verb == authz.Invoke && bodyNamesDeployment(route) && c.Principal.scopedToDeployments()) {
			project := ""
			deployment := deploymentOfPath(r.URL.EscapedPath())
			switch {
			case strings.Contains(deployment, "/"):
				project = ProjectOfName(deployment)
			case perm.Named():
				project = ProjectFrom(r.Context())
			case !perm.ClusterScoped():
				project = DefaultProject
			}
			_, deployment = SplitName(deployment)
			switch c.Principal.Decide(perm, project, deployment) {
			case Deny:
				msg := fmt.Sprintf("%s may not %s", c.Principal.Name(), perm)
				g.recordHTTP(r, c, route, perm, project, codes.PermissionDenied, msg)
				deny(w, r, http.StatusForbidden, status.New(codes.PermissionDenied, msg))
				return
			case Hide:
				g.recordHTTP(r, c, route, perm, project, codes.NotFound, "no role in the project")
				deny(w, r, http.StatusNotFound, status.New(codes.NotFound, "not found"))
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// bodyNamesDeployment says whether a route names its deployment in its
// body (the OpenAI API's model): a token scoped to deployments is checked
// by the route's handler, with MayInvoke.
func bodyNamesDeployment(route string) bool { return strings.HasPrefix(route, "POST /openai/") }

// deploymentOfPath is the deployment a KServe v2 or v1 predict path
// names ("" for others: the OpenAI routes name it in their body, and
// the gateway checks it there with MayInvoke).
func deploymentOfPath(escaped string) string {
	for _, p := range []string{"/v2/models/", "/v1/models/"} {
		if rest, ok := strings.CutPrefix(escaped, p); ok {
			name, _, _ := strings.Cut(rest, "/")
			name, _, _ = strings.Cut(name, ":")
			// A project's deployment is said "project%2Fname" in a path.
			if n, err := url.PathUnescape(name); err == nil {
				return n
			}
			return name
		}
	}
	return ""
}

// MayInvoke says whether the caller in ctx may call deployment (for
// routes that name it in their body), qualified by its project.
func MayInvoke(ctx context.Context, deployment string) bool {
	project, name := SplitName(deployment)
	return FromContext(ctx).Decide(authz.Permission{Resource: "inference", Verb: authz.Invoke}, project, name) == Allow
}

// CheckIn is a handler's check of a resource it loaded: that the caller in
// ctx may do v to resource (its kind, as the permission table names it:
// "jobs") of project ("" is the default project). It returns nil, a
// NotFound naming kind and id when the caller has no role in the project,
// or a PermissionDenied.
func CheckIn(ctx context.Context, resource, kind, id, project string, v authz.Verb) error {
	if project == "" {
		project = DefaultProject
	}
	p := FromContext(ctx)
	switch p.Decide(authz.Permission{Resource: resource, Verb: v}, project, "") {
	case Hide:
		return apierr.NotFound(kind, id)
	case Deny:
		return apierr.Denied("%s may not %s %s in project %q", p.Name(), v, resource, project)
	}
	return nil
}

// ProjectExists says whether a new resource may go in project: nil, or
// an InvalidArgument naming field (the default project always may).
func ProjectExists(ctx context.Context, st *store.Store, field, project string) error {
	if project == DefaultProject {
		return nil
	}
	if _, err := st.Get(ctx, ProjectKey(project), &iamv1.Project{}); errors.Is(err, store.ErrNotFound) {
		return apierr.Invalid(field, "no project %q", project)
	} else if err != nil {
		return err
	}
	return nil
}

// ProjectQuota reads a project's quota (nil: the project has none, or
// does not exist).
func ProjectQuota(ctx context.Context, st *store.Store, project string) (*iamv1.Quota, error) {
	p := &iamv1.Project{}
	if _, err := st.Get(ctx, ProjectKey(project), p); errors.Is(err, store.ErrNotFound) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	return p.GetQuota(), nil
}

package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/timestamppb"

	iamv1 "github.com/bmaas/bmaas/api/bmaas/iam/v1"
)

// serveInMemory serves what register mounts on an in-memory listener and
// returns globals wired to it; every call first goes through before (nil:
// none), which may refuse it.
func serveInMemory(t *testing.T, before func(ctx context.Context) error, register func(*grpc.Server)) *globals {
	lis := bufconn.Listen(1 << 20)
	srv := grpc.NewServer(grpc.UnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo,
		h grpc.UnaryHandler) (any, error) {
		if before != nil {
			if err := before(ctx); err != nil {
				return nil, err
			}
		}
		return h(ctx, req)
	}))
	register(srv)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return &globals{dial: func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }}
}

// fakeIAM is an in-memory IAMService that checks what the real one
// checks and answers its errors in the same words. Lists return one item
// per page to exercise paging.
type fakeIAM struct {
	iamv1.UnimplementedIAMServiceServer
	mu       sync.Mutex
	projects map[string]*iamv1.Project
	tokens   []*iamv1.Token
	calls    int
	auth     string
	fail     error // the next call's answer, once
	whoami   *iamv1.WhoAmIResponse

	lastCreate *iamv1.CreateTokenRequest
	lastUpdate *iamv1.UpdateProjectRequest
	lastList   *iamv1.ListTokensRequest
	lastRotate *iamv1.RotateTokenRequest
}

func startIAM(t *testing.T) (*globals, *fakeIAM) {
	f := &fakeIAM{projects: map[string]*iamv1.Project{"default": {Name: "default", Creator: "system",
		Description: "the project of every identity that names none", CreateTime: timestamppb.Now()}}}
	g := serveInMemory(t, f.before, func(s *grpc.Server) { iamv1.RegisterIAMServiceServer(s, f) })
	return g, f
}

func (f *fakeIAM) before(ctx context.Context) error {
	md, _ := metadata.FromIncomingContext(ctx)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	f.auth = ""
	if v := md.Get("authorization"); len(v) > 0 {
		f.auth = v[0]
	}
	err := f.fail
	f.fail = nil
	return err
}

// failNext makes the next call answer err.
func (f *fakeIAM) failNext(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail = err
}

func (f *fakeIAM) callCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

var (
	fakeNameRE     = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)
	fakeIdentityRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}$`)
)

func (f *fakeIAM) CreateProject(_ context.Context, r *iamv1.CreateProjectRequest) (*iamv1.CreateProjectResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	name := r.GetProject().GetName()
	if !fakeNameRE.MatchString(name) {
		return nil, status.Errorf(codes.InvalidArgument, "project.name: %q must match [a-z0-9][a-z0-9-]{0,62}", name)
	}
	if _, ok := f.projects[name]; ok {
		return nil, status.Errorf(codes.AlreadyExists, "project %q already exists", name)
	}
	if err := fakeCheckQuota(r.GetProject().GetQuota()); err != nil {
		return nil, err
	}
	p := &iamv1.Project{Name: name, Description: r.GetProject().GetDescription(), Creator: "admin",
		CreateTime: timestamppb.New(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)), Quota: r.GetProject().GetQuota()}
	f.projects[name] = p
	return &iamv1.CreateProjectResponse{Project: p}, nil
}

// fakeCheckQuota refuses a negative limit, naming it, as the server does.
func fakeCheckQuota(q *iamv1.Quota) error {
	var err error
	q.ProtoReflect().Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if v.Int() < 0 {
			err = status.Errorf(codes.InvalidArgument, "project.quota.%s: must not be negative, got %d", fd.Name(), v.Int())
		}
		return err == nil
	})
	return err
}

// UpdateProject applies the update mask as the server does.
func (f *fakeIAM) UpdateProject(_ context.Context, r *iamv1.UpdateProjectRequest) (*iamv1.UpdateProjectResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lastUpdate = proto.Clone(r).(*iamv1.UpdateProjectRequest)
	in := r.GetProject()
	if err := fakeCheckQuota(in.GetQuota()); err != nil {
		return nil, err
	}
	cur, ok := f.projects[in.GetName()]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "project %q not found", in.GetName())
	}
	cur = proto.Clone(cur).(*iamv1.Project)
	for _, p := range r.GetUpdateMask().GetPaths() {
		switch {
		case p == "description":
			cur.Description = in.GetDescription()
		case strings.HasPrefix(p, "quota."):
			if cur.Quota == nil {
				cur.Quota = &iamv1.Quota{}
			}
			fd := cur.Quota.ProtoReflect().Descriptor().Fields().ByName(protoreflect.Name(strings.TrimPrefix(p, "quota.")))
			if fd == nil {
				return nil, status.Errorf(codes.InvalidArgument, "update_mask: no field %q in a quota", p)
			}
			cur.Quota.ProtoReflect().Set(fd, in.GetQuota().ProtoReflect().Get(fd))
		default:
			return nil, status.Errorf(codes.InvalidArgument, "update_mask: %q cannot be changed", p)
		}
	}
	f.projects[cur.GetName()] = cur
	return &iamv1.UpdateProjectResponse{Project: cur}, nil
}

func (f *fakeIAM) GetProject(_ context.Context, r *iamv1.GetProjectRequest) (*iamv1.GetProjectResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p, ok := f.projects[r.GetName()]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "project %q not found", r.GetName())
	}
	return &iamv1.GetProjectResponse{Project: p}, nil
}

// page returns items[i] for page token i and the next token.
func page[T any](items []T, token string) ([]T, string) {
	i, _ := strconv.Atoi(token)
	if i >= len(items) {
		return nil, ""
	}
	next := ""
	if i+1 < len(items) {
		next = strconv.Itoa(i + 1)
	}
	return items[i : i+1], next
}

func (f *fakeIAM) ListProjects(_ context.Context, r *iamv1.ListProjectsRequest) (*iamv1.ListProjectsResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	names := make([]string, 0, len(f.projects))
	for n := range f.projects {
		names = append(names, n)
	}
	slices.Sort(names)
	var all []*iamv1.Project
	for _, n := range names {
		all = append(all, f.projects[n])
	}
	items, next := page(all, r.GetPageToken())
	return &iamv1.ListProjectsResponse{Projects: items, NextPageToken: next}, nil
}

func (f *fakeIAM) DeleteProject(_ context.Context, r *iamv1.DeleteProjectRequest) (*iamv1.DeleteProjectResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r.GetName() == "default" {
		return nil, status.Error(codes.FailedPrecondition, `the project "default" stays: identities that name no project use it`)
	}
	if _, ok := f.projects[r.GetName()]; !ok {
		return nil, status.Errorf(codes.NotFound, "project %q not found", r.GetName())
	}
	delete(f.projects, r.GetName())
	return &iamv1.DeleteProjectResponse{}, nil
}

func (f *fakeIAM) newToken(identity string, kind iamv1.IdentityKind, bs []*iamv1.Binding, description string) (*iamv1.Token, string) {
	id := fmt.Sprintf("tok%010d", len(f.tokens)+1)
	t := &iamv1.Token{Id: id, Identity: identity, Kind: kind, Bindings: bs, Description: description,
		CreateTime: timestamppb.Now(), Creator: "admin"}
	f.tokens = append(f.tokens, t)
	return t, "bmaas_" + id + "_s3cret"
}

func (f *fakeIAM) CreateToken(_ context.Context, r *iamv1.CreateTokenRequest) (*iamv1.CreateTokenResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lastCreate = proto.Clone(r).(*iamv1.CreateTokenRequest)
	if !fakeIdentityRE.MatchString(r.GetIdentity()) {
		return nil, status.Errorf(codes.InvalidArgument, "identity: %q must be 1 to 128 letters, digits or ._@+- starting with a letter or digit", r.GetIdentity())
	}
	if len(r.GetBindings()) == 0 {
		return nil, status.Error(codes.InvalidArgument, "bindings: at least one role on a project is required")
	}
	for i, b := range r.GetBindings() {
		if _, ok := f.projects[b.GetProject()]; !ok && b.GetProject() != "*" {
			return nil, status.Errorf(codes.InvalidArgument, "bindings[%d].project: no project %q", i, b.GetProject())
		}
	}
	t, secret := f.newToken(r.GetIdentity(), r.GetKind(), r.GetBindings(), r.GetDescription())
	if r.GetTtl() != nil {
		t.ExpireTime = timestamppb.New(t.GetCreateTime().AsTime().Add(r.GetTtl().AsDuration()))
	}
	return &iamv1.CreateTokenResponse{Token: t, Secret: secret}, nil
}

func (f *fakeIAM) token(id string) (*iamv1.Token, error) {
	for _, t := range f.tokens {
		if t.GetId() == id {
			return t, nil
		}
	}
	return nil, status.Errorf(codes.NotFound, "token %q not found", id)
}

func (f *fakeIAM) GetToken(_ context.Context, r *iamv1.GetTokenRequest) (*iamv1.GetTokenResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	t, err := f.token(r.GetId())
	return &iamv1.GetTokenResponse{Token: t}, err
}

func (f *fakeIAM) ListTokens(_ context.Context, r *iamv1.ListTokensRequest) (*iamv1.ListTokensResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lastList = proto.Clone(r).(*iamv1.ListTokensRequest)
	var all []*iamv1.Token
	for _, t := range f.tokens {
		if (r.GetIdentity() == "" || t.GetIdentity() == r.GetIdentity()) && (r.GetShowInactive() || tokenState(t, time.Now()) == "active") {
			all = append(all, t)
		}
	}
	items, next := page(all, r.GetPageToken())
	return &iamv1.ListTokensResponse{Tokens: items, NextPageToken: next}, nil
}

func (f *fakeIAM) RevokeToken(_ context.Context, r *iamv1.RevokeTokenRequest) (*iamv1.RevokeTokenResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	t, err := f.token(r.GetId())
	if err != nil {
		return nil, err
	}
	if t.RevokeTime == nil {
		t.RevokeTime = timestamppb.Now()
	}
	return &iamv1.RevokeTokenResponse{Token: t}, nil
}

func (f *fakeIAM) RotateToken(_ context.Context, r *iamv1.RotateTokenRequest) (*iamv1.RotateTokenResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lastRotate = proto.Clone(r).(*iamv1.RotateTokenRequest)
	old, err := f.token(r.GetId())
	if err != nil {
		return nil, err
	}
	if tokenState(old, time.Now()) != "active" {
		return nil, status.Errorf(codes.FailedPrecondition, "token %s is revoked or expired: make a new one", old.GetId())
	}
	t, secret := f.newToken(old.GetIdentity(), old.GetKind(), old.GetBindings(), old.GetDescription())
	t.RotatedFrom = old.GetId()
	old.ExpireTime = timestamppb.New(time.Now().Add(r.GetOverlap().AsDuration()))
	return &iamv1.RotateTokenResponse{Token: t, Secret: secret, Previous: old}, nil
}

func (f *fakeIAM) WhoAmI(context.Context, *iamv1.WhoAmIRequest) (*iamv1.WhoAmIResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.whoami == nil {
		return &iamv1.WhoAmIResponse{Identity: "anonymous"}, nil
	}
	return f.whoami, nil
}

func TestProjectCommands(t *testing.T) {
	t.Parallel()
	g, _ := startIAM(t)
	out, _, err := run(t, g, "project", "create", "vision", "--description", "image models")
	require.NoError(t, err)
	require.Equal(t, ""+
		"NAME          vision\n"+
		"DESCRIPTION   image models\n"+
		"QUOTA         -\n"+
		"CREATOR       admin\n"+
		"CREATED       2026-01-02T03:04:05Z\n", out)

	_, _, err = run(t, g, "project", "create", "vision")
	require.EqualError(t, err, `AlreadyExists: project "vision" already exists`)
	_, _, err = run(t, g, "project", "create", "Bad_Name")
	require.EqualError(t, err, `InvalidArgument: NAME: "Bad_Name" must match [a-z0-9][a-z0-9-]{0,62}`)
	_, _, err = run(t, g, "project", "create")
	require.ErrorContains(t, err, "expected NAME (got 0 arguments)")

	out, _, err = run(t, g, "project", "list")
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 3, "every page:\n%s", out)
	require.Regexp(t, `^NAME\s+DESCRIPTION\s+GPUS\s+CPU\s+MEMORY\s+JOBS\s+CREATOR\s+CREATED$`, lines[0])
	require.Regexp(t, `^default\s+the project of every identity that names none\s+-\s+-\s+-\s+-\s+system\s+\S+Z$`, lines[1])
	require.Regexp(t, `^vision\s+image models\s+-\s+-\s+-\s+-\s+admin\s+2026-01-02T03:04:05Z$`, lines[2])

	out, _, err = run(t, g, "-o", "json", "project", "list")
	require.NoError(t, err)
	var list struct{ Projects []map[string]any }
	require.NoError(t, json.Unmarshal([]byte(out), &list), out)
	require.Len(t, list.Projects, 2)

	out, _, err = run(t, g, "-o", "yaml", "project", "get", "vision")
	require.NoError(t, err)
	require.Contains(t, out, "name: vision\ndescription: image models\n")
	_, _, err = run(t, g, "project", "get", "nope")
	require.EqualError(t, err, `NotFound: project "nope" not found`)

	_, _, err = run(t, g, "project", "delete", "default")
	require.Equal(t, codes.FailedPrecondition, status.Code(err), "%v", err)
	out, _, err = run(t, g, "project", "delete", "vision")
	require.NoError(t, err)
	require.Equal(t, "project vision deleted\n", out)
	_, _, err = run(t, g, "project", "create", "scratch")
	require.NoError(t, err)
	out, _, err = run(t, g, "-o", "json", "project", "delete", "scratch")
	require.NoError(t, err)
	require.Empty(t, out, "a deletion has no data to print")
	_, _, err = run(t, g, "project", "delete", "vision")
	require.Equal(t, codes.NotFound, status.Code(err))
}

func TestTokenCreate(t *testing.T) {
	t.Parallel()
	g, f := startIAM(t)
	_, _, err := run(t, g, "project", "create", "vision")
	require.NoError(t, err)

	out, _, err := run(t, g, "token", "create", "--identity", "alice", "--role", "vision=editor", "--role", "default=viewer",
		"--description", "laptop")
	require.NoError(t, err)
	req := f.lastCreate
	require.Equal(t, "alice", req.GetIdentity())
	require.Equal(t, iamv1.IdentityKind_IDENTITY_KIND_USER, req.GetKind())
	require.Equal(t, "laptop", req.GetDescription())
	require.Equal(t, 720*time.Hour, req.GetTtl().AsDuration(), "30 days unless --ttl says otherwise")
	require.Len(t, req.GetBindings(), 2)
	require.True(t, proto.Equal(&iamv1.Binding{Project: "vision", Role: "editor"}, req.GetBindings()[0]))
	require.True(t, proto.Equal(&iamv1.Binding{Project: "default", Role: "viewer"}, req.GetBindings()[1]))
	require.Regexp(t, `(?m)^ID\s+tok0000000001$`, out)
	require.Regexp(t, `(?m)^IDENTITY\s+alice$`, out)
	require.Regexp(t, `(?m)^KIND\s+user$`, out)
	require.Regexp(t, `(?m)^ROLES\s+vision=editor,default=viewer$`, out)
	require.Regexp(t, `(?m)^STATE\s+active$`, out)
	require.Regexp(t, `(?m)^EXPIRES\s+\d{4}-\d\d-\d\dT\S+Z$`, out)
	require.Regexp(t, `(?m)^SECRET\s+bmaas_tok0000000001_s3cret$`, out)
	require.Contains(t, out, "The secret is shown only now")

	out, _, err = run(t, g, "-o", "json", "token", "create", "--identity", "ci", "--service-account",
		"--role", "vision=admin", "--deployment", "default/iris", "--ttl", "0")
	require.NoError(t, err)
	req = f.lastCreate
	require.Equal(t, iamv1.IdentityKind_IDENTITY_KIND_SERVICE_ACCOUNT, req.GetKind())
	require.Nil(t, req.GetTtl(), "--ttl 0: the token never expires")
	require.True(t, proto.Equal(&iamv1.Binding{Project: "default", Deployment: "iris"}, req.GetBindings()[1]))
	var resp struct {
		Token struct {
			ID       string `json:"id"`
			Kind     string `json:"kind"`
			Bindings []struct{ Project, Role, Deployment string }
		} `json:"token"`
		Secret string `json:"secret"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &resp), out)
	require.Equal(t, "bmaas_"+resp.Token.ID+"_s3cret", resp.Secret)
	require.Equal(t, "IDENTITY_KIND_SERVICE_ACCOUNT", resp.Token.Kind)
	require.Equal(t, "iris", resp.Token.Bindings[1].Deployment)

	out, _, err = run(t, g, "-o", "id", "token", "create", "--identity", "ops", "--role", "*=cluster-admin", "--ttl", "2h")
	require.NoError(t, err)
	require.Equal(t, "tok0000000003\n", out)
	require.True(t, proto.Equal(&iamv1.Binding{Project: "*", Role: "cluster-admin"}, f.lastCreate.GetBindings()[0]))
	require.Equal(t, 2*time.Hour, f.lastCreate.GetTtl().AsDuration())
}

// TestTokenCreateRefusesBadFlags: a wrong flag value is refused before any
// call, with an error that names the flag and the value typed.
func TestTokenCreateRefusesBadFlags(t *testing.T) {
	t.Parallel()
	g, f := startIAM(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--role", "vision=viewer"}, "--identity is required"},
		{[]string{"--identity", "alice"}, "--role PROJECT=ROLE (or --deployment PROJECT/DEPLOYMENT) is required"},
		{[]string{"--identity", "alice", "--role", "vision=owner"},
			`--role vision=owner: unknown role "owner"; one of viewer, editor, admin, cluster-admin`},
		{[]string{"--identity", "alice", "--role", "vision"}, "--role vision: want PROJECT=ROLE"},
		{[]string{"--identity", "alice", "--role", "=viewer"}, "--role =viewer: want PROJECT=ROLE"},
		{[]string{"--identity", "alice", "--role", "vision="}, "--role vision=: want PROJECT=ROLE"},
		{[]string{"--identity", "alice", "--role", "vision=cluster-admin"},
			"--role vision=cluster-admin: cluster-admin is granted on every project: --role '*=cluster-admin'"},
		{[]string{"--identity", "alice", "--role", "*=viewer"}, `--role *=viewer: project "*" takes only cluster-admin`},
		{[]string{"--identity", "alice", "--role", "vision=viewer", "--role", "x=Editor"}, `--role x=Editor: unknown role "Editor"`},
		{[]string{"--identity", "alice", "--deployment", "iris"}, "--deployment iris: want PROJECT/DEPLOYMENT"},
		{[]string{"--identity", "alice", "--deployment", "vision/"}, "--deployment vision/: want PROJECT/DEPLOYMENT"},
		{[]string{"--identity", "alice", "--deployment", "a/b/c"}, "--deployment a/b/c: want PROJECT/DEPLOYMENT"},
		{[]string{"--identity", "alice", "--deployment", "*/iris"}, `--deployment */iris: a deployment belongs to one project, not "*"`},
		{[]string{"--identity", "alice", "--role", "vision=viewer", "--ttl", "-1h"}, "--ttl must not be negative, got -1h0m0s"},
		{[]string{"--identity", "alice", "--role", "vision=viewer", "--ttl", "soon"}, `invalid argument "soon" for "--ttl"`},
		{[]string{"alice", "--role", "vision=viewer"}, "expected no arguments (got 1 argument)"},
	} {
		_, _, err := run(t, g, append([]string{"token", "create"}, tc.args...)...)
		require.Error(t, err, "%v", tc.args)
		require.Contains(t, err.Error(), tc.want, "%v", tc.args)
	}
	require.Zero(t, f.callCount(), "refused before any call")
}

// TestTokenCreateNamesTheFlagOfServerErrors: the server names its fields
// (identity, bindings[1].project, ttl); the CLI names the flag and the
// value the user typed.
func TestTokenCreateNamesTheFlagOfServerErrors(t *testing.T) {
	t.Parallel()
	g, f := startIAM(t)
	_, err := f.CreateProject(t.Context(), &iamv1.CreateProjectRequest{Project: &iamv1.Project{Name: "vision"}})
	require.NoError(t, err)

	_, _, err = run(t, g, "token", "create", "--identity", "bad name", "--role", "vision=viewer")
	require.EqualError(t, err, `InvalidArgument: --identity: "bad name" must be 1 to 128 letters, digits or ._@+- starting with a letter or digit`)
	_, _, err = run(t, g, "token", "create", "--identity", "alice", "--role", "nope=viewer")
	require.EqualError(t, err, `InvalidArgument: --role nope=viewer: no project "nope"`)
	_, _, err = run(t, g, "token", "create", "--identity", "alice", "--role", "vision=viewer", "--deployment", "gone/iris")
	require.EqualError(t, err, `InvalidArgument: --deployment gone/iris: no project "gone"`)
	require.Equal(t, codes.InvalidArgument, status.Code(err))

	for _, tc := range []struct{ server, want string }{
		{"bindings[0].role: unknown role \"x\"", "--role vision=viewer: unknown role \"x\""},
		{"bindings[1].project: bindings[1]: cluster-admin is granted on project \"*\" only, and only it is",
			"--role default=editor: cluster-admin is granted on project \"*\" only, and only it is"},
		{"bindings[7].project: no project", "bindings[7].project: no project"},
		{"bindings: at least one role on a project is required", "--role: at least one role on a project is required"},
		{"ttl: must be positive, got 0s", "--ttl: must be positive, got 0s"},
		{"kind: a token is a user's or a service account's", "--service-account: a token is a user's or a service account's"},
	} {
		f.failNext(status.Error(codes.InvalidArgument, tc.server))
		_, _, err = run(t, g, "token", "create", "--identity", "alice", "--role", "vision=viewer", "--role", "default=editor")
		require.EqualError(t, err, "InvalidArgument: "+tc.want)
	}
	f.failNext(status.Error(codes.PermissionDenied, `bob may not grant editor on project "vision": that needs its admin role`))
	_, _, err = run(t, g, "token", "create", "--identity", "alice", "--role", "vision=editor")
	require.EqualError(t, err, `PermissionDenied: bob may not grant editor on project "vision": that needs its admin role`)
}

func TestTokenListGetRevokeRotate(t *testing.T) {
	t.Parallel()
	g, f := startIAM(t)
	for _, id := range []string{"alice", "ci", "alice"} {
		_, _, err := run(t, g, "token", "create", "--identity", id, "--role", "default=viewer", "--description", id+"'s")
		require.NoError(t, err)
	}

	out, _, err := run(t, g, "token", "list")
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 4, "every page:\n%s", out)
	require.Regexp(t, `^ID\s+IDENTITY\s+KIND\s+ROLES\s+STATE\s+EXPIRES\s+CREATED\s+DESCRIPTION$`, lines[0])
	require.Regexp(t, `^tok0000000001\s+alice\s+user\s+default=viewer\s+active\s+\S+Z\s+\S+Z\s+alice's$`, lines[1])
	require.False(t, f.lastList.GetShowInactive())

	out, _, err = run(t, g, "-o", "id", "token", "list", "--identity", "alice")
	require.NoError(t, err)
	require.Equal(t, "tok0000000001\ntok0000000003\n", out)
	require.Equal(t, "alice", f.lastList.GetIdentity())

	out, _, err = run(t, g, "token", "get", "tok0000000002")
	require.NoError(t, err)
	require.Regexp(t, `(?m)^IDENTITY\s+ci$`, out)
	require.Regexp(t, `(?m)^CREATED\s+\S+Z by admin$`, out)
	require.NotContains(t, out, "SECRET")
	out, _, err = run(t, g, "-o", "json", "token", "get", "tok0000000002")
	require.NoError(t, err)
	require.NotContains(t, out, "secret")
	require.Contains(t, out, `"identity": "ci"`)
	_, _, err = run(t, g, "token", "get", "nope")
	require.EqualError(t, err, `NotFound: token "nope" not found`)
	f.failNext(status.Error(codes.InvalidArgument, "id: required"))
	_, _, err = run(t, g, "token", "get", "")
	require.EqualError(t, err, "InvalidArgument: ID: required")
	_, _, err = run(t, g, "token", "get")
	require.ErrorContains(t, err, "expected ID (got 0 arguments)")

	out, _, err = run(t, g, "token", "revoke", "tok0000000002")
	require.NoError(t, err)
	require.Regexp(t, `^token tok0000000002 of ci revoked at \S+Z\n$`, out)
	out, _, err = run(t, g, "-o", "json", "token", "revoke", "tok0000000002")
	require.NoError(t, err)
	require.Contains(t, out, `"revoke_time"`)
	_, _, err = run(t, g, "token", "revoke", "nope")
	require.Equal(t, codes.NotFound, status.Code(err))

	out, _, err = run(t, g, "token", "list")
	require.NoError(t, err)
	require.NotContains(t, out, "tok0000000002", "revoked: listed only with --all")
	out, _, err = run(t, g, "token", "list", "--all")
	require.NoError(t, err)
	require.True(t, f.lastList.GetShowInactive())
	require.Regexp(t, `(?m)^tok0000000002\s+ci\s+user\s+default=viewer\s+revoked\s`, out)
	out, _, err = run(t, g, "token", "get", "tok0000000002")
	require.NoError(t, err)
	require.Regexp(t, `(?m)^STATE\s+revoked$`, out)
	require.Regexp(t, `(?m)^REVOKED\s+\S+Z$`, out)

	out, _, err = run(t, g, "token", "rotate", "tok0000000001", "--overlap", "30m")
	require.NoError(t, err)
	require.Equal(t, 30*time.Minute, f.lastRotate.GetOverlap().AsDuration())
	require.Regexp(t, `(?m)^ID\s+tok0000000004$`, out)
	require.Regexp(t, `(?m)^ROTATED FROM\s+tok0000000001$`, out)
	require.Regexp(t, `(?m)^SECRET\s+bmaas_tok0000000004_s3cret$`, out)
	require.Contains(t, out, "The secret is shown only now")
	require.Regexp(t, `(?m)^The old token tok0000000001 expires at \S+Z\.$`, out)

	out, _, err = run(t, g, "-o", "json", "token", "rotate", "tok0000000003")
	require.NoError(t, err)
	require.Equal(t, time.Hour, f.lastRotate.GetOverlap().AsDuration(), "the default overlap")
	var rot struct {
		Token    struct{ ID string }
		Secret   string
		Previous struct {
			ID         string
			ExpireTime string `json:"expire_time"`
		}
	}
	require.NoError(t, json.Unmarshal([]byte(out), &rot), out)
	require.Equal(t, "bmaas_tok0000000005_s3cret", rot.Secret)
	require.Equal(t, "tok0000000003", rot.Previous.ID)
	require.NotEmpty(t, rot.Previous.ExpireTime)

	_, _, err = run(t, g, "token", "rotate", "tok0000000002")
	require.EqualError(t, err, "FailedPrecondition: token tok0000000002 is revoked or expired: make a new one")
	f.failNext(status.Error(codes.InvalidArgument, "overlap: must not be negative, got -1s"))
	_, _, err = run(t, g, "token", "rotate", "tok0000000001")
	require.EqualError(t, err, "InvalidArgument: --overlap: must not be negative, got -1s")

	calls := f.callCount()
	_, _, err = run(t, g, "token", "rotate", "tok0000000001", "--overlap", "-1s")
	require.EqualError(t, err, "--overlap must not be negative, got -1s (0s ends the old token at once)")
	_, _, err = run(t, g, "token", "rotate", "tok0000000001", "--overlap", "an hour")
	require.ErrorContains(t, err, `invalid argument "an hour" for "--overlap"`)
	_, _, err = run(t, g, "token", "rotate")
	require.ErrorContains(t, err, "expected ID (got 0 arguments)")
	require.Equal(t, calls, f.callCount(), "refused before any call")
}

func TestWhoAmI(t *testing.T) {
	t.Parallel()
	g, f := startIAM(t)
	out, _, err := run(t, g, "whoami")
	require.NoError(t, err)
	require.Equal(t, "IDENTITY   anonymous\n\nauth off: the platform asks no token, and every caller may do everything\n", out)

	f.mu.Lock()
	f.whoami = &iamv1.WhoAmIResponse{Identity: "ci", Kind: iamv1.IdentityKind_IDENTITY_KIND_SERVICE_ACCOUNT,
		TokenId: "tok0000000009", Auth: true, Bindings: []*iamv1.Binding{{Project: "vision", Role: "editor"},
			{Project: "default", Role: "viewer", Deployment: "iris"}}}
	f.mu.Unlock()
	out, _, err = run(t, g, "whoami", "--token", "bmaas_tok0000000009_s3cret")
	require.NoError(t, err)
	require.Equal(t, ""+
		"IDENTITY   ci\n"+
		"KIND       service-account\n"+
		"TOKEN      tok0000000009\n"+
		"ROLES      vision=editor,default/iris\n", out)
	f.mu.Lock()
	require.Equal(t, "Bearer bmaas_tok0000000009_s3cret", f.auth)
	f.mu.Unlock()

	out, _, err = run(t, g, "-o", "yaml", "whoami")
	require.NoError(t, err)
	require.Equal(t, ""+
		"identity: ci\n"+
		"kind: IDENTITY_KIND_SERVICE_ACCOUNT\n"+
		"token_id: tok0000000009\n"+
		"bindings:\n"+
		"  - project: vision\n"+
		"    role: editor\n"+
		"  - project: default\n"+
		"    role: viewer\n"+
		"    deployment: iris\n"+
		"auth: true\n", out)

	f.failNext(status.Error(codes.Unauthenticated, "the token is revoked"))
	_, _, err = run(t, g, "whoami")
	require.EqualError(t, err, "Unauthenticated: the token is revoked")
	_, _, err = run(t, g, "whoami", "me")
	require.ErrorContains(t, err, "expected no arguments (got 1 argument)")
}

func TestIAMHelpers(t *testing.T) {
	t.Parallel()
	require.Equal(t, "user", kindName(iamv1.IdentityKind_IDENTITY_KIND_USER))
	require.Equal(t, "service-account", kindName(iamv1.IdentityKind_IDENTITY_KIND_SERVICE_ACCOUNT))
	require.Equal(t, "system", kindName(iamv1.IdentityKind_IDENTITY_KIND_SYSTEM))
	require.Equal(t, "-", kindName(iamv1.IdentityKind_IDENTITY_KIND_UNSPECIFIED))
	require.Equal(t, "-", rolesString(nil))

	now := time.Now()
	require.Equal(t, "active", tokenState(&iamv1.Token{}, now))
	require.Equal(t, "active", tokenState(&iamv1.Token{ExpireTime: timestamppb.New(now.Add(time.Minute))}, now))
	require.Equal(t, "expired", tokenState(&iamv1.Token{ExpireTime: timestamppb.New(now)}, now))
	require.Equal(t, "revoked", tokenState(&iamv1.Token{RevokeTime: timestamppb.New(now), ExpireTime: timestamppb.New(now)}, now))

	// Errors that name no binding, or one the user did not type, pass unchanged.
	typed := []string{"--role a=viewer"}
	for _, msg := range []string{"bindings[x].project: y", "bindings[1]: y", "bindings[0]", "identity: y"} {
		err := status.Error(codes.InvalidArgument, msg)
		require.Equal(t, err, renameBindings(err, typed), msg)
	}
	require.EqualError(t, renameBindings(status.Error(codes.InvalidArgument, "bindings[0]: y"), typed), "InvalidArgument: --role a=viewer: y")
	require.NoError(t, renameBindings(nil, typed))
}

func TestProjectQuota(t *testing.T) {
	t.Parallel()
	g, f := startIAM(t)
	out, _, err := run(t, g, "project", "create", "vision", "--quota", "gpus=8,cpu=32", "--quota", "memory=256Gi")
	require.NoError(t, err)
	require.Regexp(t, `(?m)^QUOTA\s+gpus=8,cpu=32,memory=256Gi$`, out)
	q := f.projects["vision"].GetQuota()
	require.True(t, proto.Equal(&iamv1.Quota{Gpus: 8, CpuMillis: 32000, MemoryBytes: 256 << 30}, q), "%v", q)

	out, _, err = run(t, g, "project", "update", "vision", "--quota", "jobs=10, cpu=500m",
		"--quota", "gpu-memory=640Gi,deployments=5,replicas=20,storage=1Ti,llm-tokens-per-minute=100000")
	require.NoError(t, err)
	require.Equal(t, []string{"quota.jobs", "quota.cpu_millis", "quota.gpu_memory_bytes", "quota.deployments",
		"quota.replicas", "quota.storage_bytes", "quota.llm_tokens_per_minute"}, f.lastUpdate.GetUpdateMask().GetPaths(),
		"only the keys named, in the order typed")
	require.Equal(t, "vision", f.lastUpdate.GetProject().GetName())
	require.Regexp(t, `(?m)^QUOTA\s+gpus=8,gpu-memory=640Gi,cpu=500m,memory=256Gi,jobs=10,deployments=5,replicas=20,`+
		`storage=1Ti,llm-tokens-per-minute=100000$`, out, "the keys not named keep their values")
	require.Regexp(t, `(?m)^DESCRIPTION\s+-$`, out)

	out, _, err = run(t, g, "project", "update", "vision", "--description", "image models")
	require.NoError(t, err)
	require.Equal(t, []string{"description"}, f.lastUpdate.GetUpdateMask().GetPaths())
	require.Regexp(t, `(?m)^DESCRIPTION\s+image models$`, out)
	require.Regexp(t, `(?m)^QUOTA\s+gpus=8,`, out)
	_, _, err = run(t, g, "project", "update", "vision", "--description", "", "--quota", "gpus=0")
	require.NoError(t, err)
	require.Equal(t, []string{"description", "quota.gpus"}, f.lastUpdate.GetUpdateMask().GetPaths(), "an empty description clears it")
	require.Zero(t, f.projects["vision"].GetQuota().GetGpus(), "0: no guarantee")

	out, _, err = run(t, g, "project", "list")
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Regexp(t, `^NAME\s+DESCRIPTION\s+GPUS\s+CPU\s+MEMORY\s+JOBS\s+CREATOR\s+CREATED$`, lines[0])
	require.Regexp(t, `^vision\s+-\s+-\s+500m\s+256Gi\s+10\s+admin\s+\S+Z$`, lines[2])

	out, _, err = run(t, g, "-o", "json", "project", "get", "vision")
	require.NoError(t, err)
	var p struct {
		Name  string
		Quota map[string]any
	}
	require.NoError(t, json.Unmarshal([]byte(out), &p), out)
	require.Equal(t, "vision", p.Name)
	require.Equal(t, map[string]any{"gpu_memory_bytes": "687194767360", "cpu_millis": "500", "memory_bytes": "274877906944",
		"jobs": float64(10), "deployments": float64(5), "replicas": float64(20), "storage_bytes": "1099511627776",
		"llm_tokens_per_minute": "100000"}, p.Quota, "the whole quota")
	out, _, err = run(t, g, "-o", "yaml", "project", "update", "vision", "--quota", "gpus=2")
	require.NoError(t, err)
	require.Contains(t, out, "quota:\n  gpus: \"2\"\n")
	out, _, err = run(t, g, "-o", "id", "project", "update", "vision", "--quota", "gpus=3")
	require.NoError(t, err)
	require.Equal(t, "vision\n", out)

	// The server's errors name the flag and the key.
	_, _, err = run(t, g, "project", "update", "nope", "--quota", "gpus=1")
	require.EqualError(t, err, `NotFound: project "nope" not found`)
	f.failNext(status.Error(codes.InvalidArgument, "project.quota.cpu_millis: must not be negative, got -1"))
	_, _, err = run(t, g, "project", "update", "vision", "--quota", "cpu=1")
	require.EqualError(t, err, "InvalidArgument: --quota cpu: must not be negative, got -1")
	f.failNext(status.Error(codes.InvalidArgument, "project.quota: too large for the cluster"))
	_, _, err = run(t, g, "project", "create", "nlp", "--quota", "gpus=1000")
	require.EqualError(t, err, "InvalidArgument: --quota: too large for the cluster")
	f.failNext(status.Error(codes.PermissionDenied, `alice may not change project "vision": that needs its admin role`))
	_, _, err = run(t, g, "project", "update", "vision", "--quota", "gpus=1")
	require.Equal(t, codes.PermissionDenied, status.Code(err))
}

// TestProjectQuotaRefusesBadValues: a wrong --quota is refused before any
// call, with an error that names --quota and what was typed.
func TestProjectQuotaRefusesBadValues(t *testing.T) {
	t.Parallel()
	g, f := startIAM(t)
	for _, tc := range []struct{ quota, want string }{
		{"gpus", "--quota gpus: want KEY=VALUE (e.g. --quota gpus=8,cpu=32,memory=256Gi); keys: gpus, gpu-memory, cpu, memory, jobs, deployments, replicas, storage, llm-tokens-per-minute"},
		{"gpus=", "--quota gpus=: want KEY=VALUE"},
		{"=8", "--quota =8: want KEY=VALUE"},
		{"gpus=8,", "--quota : want KEY=VALUE"},
		{"gpu=8", `--quota gpu=8: unknown key "gpu"; one of gpus, gpu-memory, cpu, memory, jobs, deployments, replicas, storage, llm-tokens-per-minute`},
		{"GPUS=8", `--quota GPUS=8: unknown key "GPUS"`},
		{"cpu_millis=8", `--quota cpu_millis=8: unknown key "cpu_millis"`},
		{"gpus=8,gpus=4", "--quota gpus=4: gpus is given twice"},
		{"gpus=eight", "--quota gpus=eight: want a whole number (0: none)"},
		{"gpus=1.5", "--quota gpus=1.5: want a whole number (0: none)"},
		{"gpus=-1", "--quota gpus=-1: must not be negative"},
		{"jobs=-3", "--quota jobs=-3: must not be negative"},
		{"jobs=2147483648", "--quota jobs=2147483648: at most 2147483647"},
		{"replicas=99999999999999999999", "--quota replicas=99999999999999999999: at most 2147483647"},
		{"llm-tokens-per-minute=99999999999999999999", "--quota llm-tokens-per-minute=99999999999999999999: at most 9223372036854775807"},
		{"cpu=lots", "--quota cpu=lots: want cores (32, 0.5) or millicores (500m)"},
		{"cpu=-2", "--quota cpu=-2: want cores (32, 0.5) or millicores (500m)"},
		{"cpu=0.0001", "--quota cpu=0.0001: finer than a millicore"},
		{"memory=lots", "--quota memory=lots: want bytes with an optional unit (512Mi, 256Gi, 1Ti, 2G)"},
		{"memory=-1Gi", "--quota memory=-1Gi: want bytes"},
		{"memory=1gi", "--quota memory=1gi: want bytes"},
		{"storage=1ki", `--quota storage=1ki: unknown unit "ki"`},
		{"gpu-memory=99999999Pi", "--quota gpu-memory=99999999Pi: too large"},
	} {
		for _, cmd := range [][]string{{"project", "update", "vision"}, {"project", "create", "vision"}} {
			_, _, err := run(t, g, append(cmd, "--quota", tc.quota)...)
			require.Error(t, err, "%v", tc.quota)
			require.Contains(t, err.Error(), tc.want, "%v %v", cmd, tc.quota)
		}
	}
	_, _, err := run(t, g, "project", "update", "vision")
	require.EqualError(t, err, "nothing to update: give --description or --quota KEY=VALUE")
	_, _, err = run(t, g, "project", "update", "--quota", "gpus=1")
	require.ErrorContains(t, err, "expected NAME (got 0 arguments)")
	require.Zero(t, f.callCount(), "refused before any call")
}

func TestQuotaValuesRoundTrip(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want *iamv1.Quota
		show string
	}{
		{"cpu=32", &iamv1.Quota{CpuMillis: 32000}, "cpu=32"},
		{"cpu=0.5", &iamv1.Quota{CpuMillis: 500}, "cpu=500m"},
		{"cpu=1500m", &iamv1.Quota{CpuMillis: 1500}, "cpu=1500m"},
		{"memory=1.5Gi", &iamv1.Quota{MemoryBytes: 1536 << 20}, "memory=1536Mi"},
		{"memory=2G", &iamv1.Quota{MemoryBytes: 2e9}, "memory=2G"},
		{"memory=1000", &iamv1.Quota{MemoryBytes: 1000}, "memory=1k"},
		{"memory=1234", &iamv1.Quota{MemoryBytes: 1234}, "memory=1234"},
		{"memory=3Ki", &iamv1.Quota{MemoryBytes: 3072}, "memory=3Ki"},
		{"storage=1TiB", &iamv1.Quota{StorageBytes: 1 << 40}, "storage=1Ti"},
		{"storage=2Pi", &iamv1.Quota{StorageBytes: 2 << 50}, "storage=2Pi"},
		{"gpus=0,jobs=0", &iamv1.Quota{}, "-"},
	} {
		q, _, err := parseQuota([]string{tc.in})
		require.NoError(t, err, tc.in)
		require.True(t, proto.Equal(tc.want, q), "%s: %v", tc.in, q)
		require.Equal(t, tc.show, quotaString(q), tc.in)
	}
	q, paths, err := parseQuota(nil)
	require.NoError(t, err)
	require.Nil(t, q, "no --quota: no quota sent")
	require.Empty(t, paths)
	require.Equal(t, "-", quotaString(nil))
}

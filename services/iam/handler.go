package iam

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/timestamppb"

	iamv1 "github.com/bmaas/bmaas/api/bmaas/iam/v1"
	"github.com/bmaas/bmaas/pkg/apierr"
	"github.com/bmaas/bmaas/pkg/authz"
	"github.com/bmaas/bmaas/pkg/iam"
	"github.com/bmaas/bmaas/pkg/store"
)

// handler is the IAMService adapter.
type handler struct {
	iamv1.UnimplementedIAMServiceServer
	s *Service
}

func (h *handler) CreateProject(ctx context.Context, req *iamv1.CreateProjectRequest) (*iamv1.CreateProjectResponse, error) {
	p := req.GetProject()
	if !iam.ProjectName.MatchString(p.GetName()) {
		return nil, apierr.Invalid("project.name", "%q must match [a-z0-9][a-z0-9-]{0,62}", p.GetName())
	}
	if err := checkQuota("project.quota", p.GetQuota()); err != nil {
		return nil, err
	}
	out := &iamv1.Project{Name: p.GetName(), Description: p.GetDescription(), CreateTime: timestamppb.New(h.s.now()),
		Creator: principal(ctx).Name(), Quota: p.GetQuota()}
	key := iam.ProjectKey(out.Name)
	if _, err := h.s.st.Commit(ctx, []store.Cond{{Key: key}}, store.Put(key, out)); err != nil {
		if store.IsStale(err) {
			return nil, apierr.AlreadyExists("project", out.Name)
		}
		return nil, err
	}
	return &iamv1.CreateProjectResponse{Project: out}, nil
}

func (h *handler) GetProject(ctx context.Context, req *iamv1.GetProjectRequest) (*iamv1.GetProjectResponse, error) {
	if req.GetName() == "" {
		return nil, apierr.Invalid("name", "required")
	}
	p := &iamv1.Project{}
	if principal(ctx).RoleIn(req.GetName()) == 0 {
		return nil, apierr.NotFound("project", req.GetName())
	}
	if _, err := h.s.st.Get(ctx, iam.ProjectKey(req.GetName()), p); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, apierr.NotFound("project", req.GetName())
		}
		return nil, err
	}
	return &iamv1.GetProjectResponse{Project: p}, nil
}

func (h *handler) ListProjects(ctx context.Context, req *iamv1.ListProjectsRequest) (*iamv1.ListProjectsResponse, error) {
	n, err := store.PageSize("page_size", req.GetPageSize())
	if err != nil {
		return nil, err
	}
	p := principal(ctx)
	items, next, err := store.List(ctx, h.s.st, iam.ProjectsPrefix, n, req.GetPageToken(),
		func() *iamv1.Project { return &iamv1.Project{} }, func(pr *iamv1.Project) bool { return p.RoleIn(pr.GetName()) > 0 })
	if err != nil {
		return nil, err
	}
	out := &iamv1.ListProjectsResponse{NextPageToken: next}
	for _, it := range items {
		out.Projects = append(out.Projects, it.Msg)
	}
	return out, nil
}

// UpdateProject changes a project's description or quota (AIP-134).
func (h *handler) UpdateProject(ctx context.Context, req *iamv1.UpdateProjectRequest) (*iamv1.UpdateProjectResponse, error) {
	in := req.GetProject()
	if in.GetName() == "" {
		return nil, apierr.Invalid("project.name", "required")
	}
	paths := req.GetUpdateMask().GetPaths()
	if len(paths) == 0 {
		return nil, apierr.Invalid("update_mask", "name the fields to change: description, quota or quota.<field>")
	}
	if err := checkQuota("project.quota", in.GetQuota()); err != nil {
		return nil, err
	}
	key := iam.ProjectKey(in.GetName())
	for {
		cur := &iamv1.Project{}
		rev, err := h.s.st.Get(ctx, key, cur)
		if errors.Is(err, store.ErrNotFound) {
			return nil, apierr.NotFound("project", in.GetName())
		} else if err != nil {
			return nil, err
		}
		for _, p := range paths {
			switch {
			case p == "description":
				cur.Description = in.GetDescription()
			case p == "quota":
				cur.Quota = in.GetQuota()
			case strings.HasPrefix(p, "quota."):
				if cur.Quota == nil {
					cur.Quota = &iamv1.Quota{}
				}
				fd := cur.Quota.ProtoReflect().Descriptor().Fields().ByName(protoreflect.Name(strings.TrimPrefix(p, "quota.")))
				if fd == nil {
					return nil, apierr.Invalid("update_mask", "no field %q in a quota", p)
				}
				cur.Quota.ProtoReflect().Set(fd, in.GetQuota().ProtoReflect().Get(fd))
			default:
				return nil, apierr.Invalid("update_mask", "%q cannot be changed: description, quota or quota.<field>", p)
			}
		}
		_, err = h.s.st.Commit(ctx, []store.Cond{{Key: key, Rev: rev}}, store.Put(key, cur))
		if store.IsStale(err) {
			continue
		}
		if err != nil {
			return nil, err
		}
		return &iamv1.UpdateProjectResponse{Project: cur}, nil
	}
}

// checkQuota refuses a negative limit, naming it.
func checkQuota(field string, q *iamv1.Quota) error {
	var err error
	q.ProtoReflect().Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if v.Int() < 0 {
			err = apierr.Invalid(field+"."+string(fd.Name()), "must not be negative, got %d", v.Int())
		}
		return err == nil
	})
	return err
}

func (h *handler) DeleteProject(ctx context.Context, req *iamv1.DeleteProjectRequest) (*iamv1.DeleteProjectResponse, error) {
	switch req.GetName() {
	case "":
		return nil, apierr.Invalid("name", "required")
	case iam.DefaultProject:
		return nil, apierr.Precondition("the project %q stays: identities that name no project use it", iam.DefaultProject)
	}
	key := iam.ProjectKey(req.GetName())
	rev, err := h.s.st.Get(ctx, key, &iamv1.Project{})
	if errors.Is(err, store.ErrNotFound) {
		return nil, apierr.NotFound("project", req.GetName())
	} else if err != nil {
		return nil, err
	}
	if _, err := h.s.st.Commit(ctx, []store.Cond{{Key: key, Rev: rev}}, store.Delete(key)); err != nil {
		return nil, err
	}
	return &iamv1.DeleteProjectResponse{}, nil
}

func (h *handler) CreateToken(ctx context.Context, req *iamv1.CreateTokenRequest) (*iamv1.CreateTokenResponse, error) {
	if !identityRE.MatchString(req.GetIdentity()) {
		return nil, apierr.Invalid("identity", "%q must be 1 to 128 letters, digits or ._@+- starting with a letter or digit", req.GetIdentity())
	}
	kind := req.GetKind()
	switch kind {
	case iamv1.IdentityKind_IDENTITY_KIND_UNSPECIFIED:
		kind = iamv1.IdentityKind_IDENTITY_KIND_USER
	case iamv1.IdentityKind_IDENTITY_KIND_USER, iamv1.IdentityKind_IDENTITY_KIND_SERVICE_ACCOUNT:
	default:
		return nil, apierr.Invalid("kind", "a token is a user's or a service account's")
	}
	if err := h.checkBindings(ctx, req.GetBindings()); err != nil {
		return nil, err
	}
	if req.GetTtl() != nil && req.GetTtl().AsDuration() <= 0 {
		return nil, apierr.Invalid("ttl", "must be positive, got %s", req.GetTtl().AsDuration())
	}
	now := h.s.now()
	id, secret, sum := iam.NewSecret()
	t := &iamv1.Token{Id: id, Identity: req.GetIdentity(), Kind: kind, Bindings: req.GetBindings(),
		Description: req.GetDescription(), CreateTime: timestamppb.New(now), Creator: principal(ctx).Name()}
	if req.GetTtl() != nil {
		t.ExpireTime = timestamppb.New(now.Add(req.GetTtl().AsDuration()))
	}
	if err := putToken(ctx, h.s.st, t, sum); err != nil {
		return nil, err
	}
	return &iamv1.CreateTokenResponse{Token: t, Secret: secret}, nil
}

// checkBindings validates a new token's roles: each names a project that
// exists (or "*" with cluster-admin) and a known role, and the caller is
// an admin of it.
func (h *handler) checkBindings(ctx context.Context, bs []*iamv1.Binding) error {
	if len(bs) == 0 {
		return apierr.Invalid("bindings", "at least one role on a project is required")
	}
	caller := principal(ctx)
	for i, b := range bs {
		field := func(f string) string { return "bindings[" + strconv.Itoa(i) + "]." + f }
		if b.GetDeployment() != "" && b.GetRole() == "" {
			b.Role = "viewer"
		}
		r, err := authz.ParseRole(b.GetRole())
		if err != nil {
			return apierr.Invalid(field("role"), "%v", err)
		}
		if _, err := iam.NewPrincipal(&iamv1.Token{Bindings: []*iamv1.Binding{b}}); err != nil {
			return apierr.Invalid(field("project"), "%v", err)
		}
		if b.GetProject() != iam.AllProjects {
			if _, err := h.s.st.Get(ctx, iam.ProjectKey(b.GetProject()), &iamv1.Project{}); errors.Is(err, store.ErrNotFound) {
				return apierr.Invalid(field("project"), "no project %q", b.GetProject())
			} else if err != nil {
				return err
			}
		}
		if caller.RoleIn(b.GetProject()) < max(authz.ProjectAdmin, min(r, authz.ClusterAdmin)) {
			return apierr.Denied("%s may not grant %s on project %q: that needs its admin role", caller.Name(), r, b.GetProject())
		}
	}
	return nil
}

// visible says whether caller may see (and so revoke, rotate) t.
func visible(caller *iam.Principal, t *iamv1.Token) bool {
	if caller == nil || caller.ClusterAdmin() || caller.Identity == t.GetIdentity() && caller.Kind == t.GetKind() {
		return true
	}
	for _, b := range t.GetBindings() {
		if caller.RoleIn(b.GetProject()) < authz.ProjectAdmin {
			return false
		}
	}
	return len(t.GetBindings()) > 0
}

// load reads a token the caller may see.
func (h *handler) load(ctx context.Context, id string) (*iamv1.StoredToken, int64, error) {
	if id == "" {
		return nil, 0, apierr.Invalid("id", "required")
	}
	st := &iamv1.StoredToken{}
	rev, err := h.s.st.Get(ctx, iam.TokenKey(id), st)
	if errors.Is(err, store.ErrNotFound) || err == nil && !visible(principal(ctx), st.GetToken()) {
		return nil, 0, apierr.NotFound("token", id)
	}
	return st, rev, err
}

func (h *handler) GetToken(ctx context.Context, req *iamv1.GetTokenRequest) (*iamv1.GetTokenResponse, error) {
	st, _, err := h.load(ctx, req.GetId())
	if err != nil {
		return nil, err
	}
	return &iamv1.GetTokenResponse{Token: st.GetToken()}, nil
}

func (h *handler) ListTokens(ctx context.Context, req *iamv1.ListTokensRequest) (*iamv1.ListTokensResponse, error) {
	n, err := store.PageSize("page_size", req.GetPageSize())
	if err != nil {
		return nil, err
	}
	caller, now := principal(ctx), h.s.now()
	items, next, err := store.List(ctx, h.s.st, iam.TokensPrefix, n, req.GetPageToken(),
		func() *iamv1.StoredToken { return &iamv1.StoredToken{} }, func(st *iamv1.StoredToken) bool {
			t := st.GetToken()
			return (req.GetIdentity() == "" || t.GetIdentity() == req.GetIdentity()) && visible(caller, t) &&
				(req.GetShowInactive() || active(t, now))
		})
	if err != nil {
		return nil, err
	}
	out := &iamv1.ListTokensResponse{NextPageToken: next}
	for _, it := range items {
		out.Tokens = append(out.Tokens, it.Msg.GetToken())
	}
	return out, nil
}

func active(t *iamv1.Token, now time.Time) bool {
	return t.GetRevokeTime() == nil && (t.GetExpireTime() == nil || now.Before(t.GetExpireTime().AsTime()))
}

func (h *handler) RevokeToken(ctx context.Context, req *iamv1.RevokeTokenRequest) (*iamv1.RevokeTokenResponse, error) {
	st, rev, err := h.load(ctx, req.GetId())
	if err != nil {
		return nil, err
	}
	if st.GetToken().GetRevokeTime() == nil {
		st.Token.RevokeTime = timestamppb.New(h.s.now())
		if _, err := h.s.st.Commit(ctx, []store.Cond{{Key: iam.TokenKey(req.GetId()), Rev: rev}}, store.Put(iam.TokenKey(req.GetId()), st)); err != nil {
			return nil, err
		}
	}
	return &iamv1.RevokeTokenResponse{Token: st.GetToken()}, nil
}

func (h *handler) RotateToken(ctx context.Context, req *iamv1.RotateTokenRequest) (*iamv1.RotateTokenResponse, error) {
	overlap := time.Hour
	if req.GetOverlap() != nil {
		if overlap = req.GetOverlap().AsDuration(); overlap < 0 {
			return nil, apierr.Invalid("overlap", "must not be negative, got %s", overlap)
		}
	}
	old, rev, err := h.load(ctx, req.GetId())
	if err != nil {
		return nil, err
	}
	now := h.s.now()
	if !active(old.GetToken(), now) {
		return nil, apierr.Precondition("token %s is revoked or expired: make a new one", req.GetId())
	}
	id, secret, sum := iam.NewSecret()
	t := proto.Clone(old.GetToken()).(*iamv1.Token)
	t.Id, t.CreateTime, t.RotatedFrom, t.Creator = id, timestamppb.New(now), old.GetToken().GetId(), principal(ctx).Name()
	if end := now.Add(overlap); old.Token.ExpireTime == nil || end.Before(old.Token.ExpireTime.AsTime()) {
		old.Token.ExpireTime = timestamppb.New(end)
	}
	oldKey := iam.TokenKey(req.GetId())
	if _, err := h.s.st.Commit(ctx, []store.Cond{{Key: oldKey, Rev: rev}, {Key: iam.TokenKey(id)}},
		store.Put(oldKey, old), store.Put(iam.TokenKey(id), &iamv1.StoredToken{Token: t, SecretSha256: sum})); err != nil {
		return nil, err
	}
	return &iamv1.RotateTokenResponse{Token: t, Secret: secret, Previous: old.GetToken()}, nil
}

func (h *handler) WhoAmI(ctx context.Context, _ *iamv1.WhoAmIRequest) (*iamv1.WhoAmIResponse, error) {
	p := principal(ctx)
	out := &iamv1.WhoAmIResponse{Identity: p.Name(), Auth: h.s.auth.Enabled()}
	if p != nil {
		out.Kind, out.TokenId, out.Bindings = p.Kind, p.TokenID, p.Bindings()
	}
	return out, nil
}

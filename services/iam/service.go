// Package iam is the IAM and audit API: projects, the API tokens of
// users and service accounts, who the caller is, and the audit trail.
// The registry's process serves it. Tokens and projects live in etcd
// under pkg/iam's keys (tokens only as their secret's SHA-256); every
// process's pkg/iam.Authority follows the tokens. The audit trail is the
// JetStream stream pkg/iam.AuditStream, written by every process's guard
// and read here.
//
// Who may do what beyond the permission table's entry is decided here,
// per request: a token is made by an admin of every project it binds (a
// cluster-admin for "*"); a token is seen, revoked or rotated by its own
// identity or an admin of every project it binds; a project is seen by
// who has a role in it; the trail of a project is read by its admins,
// the whole trail by a cluster-admin.
package iam

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/timestamppb"

	iamv1 "github.com/bmaas/bmaas/api/bmaas/iam/v1"
	"github.com/bmaas/bmaas/pkg/iam"
	"github.com/bmaas/bmaas/pkg/store"
)

// Deps are the service's dependencies.
type Deps struct {
	Logger *slog.Logger
	Store  *store.Store
	// JS reads the audit trail (nil: ListAuditRecords is unavailable).
	JS jetstream.JetStream
	// Auth says whether the platform asks a token (WhoAmI).
	Auth *iam.Authority
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// OIDC signs people in (off when its issuer is empty).
	OIDC OIDCConfig
}

// Service is the IAM API's lifecycle.
type Service struct {
	log *slog.Logger
	st  *store.Store
	js  jetstream.JetStream
	// auth may be nil (the platform asks no token).
	auth *iam.Authority
	now  func() time.Time
	oidc *oidcLogin
}

// New builds the service.
func New(deps Deps) (*Service, error) {
	if deps.Store == nil {
		return nil, errors.New("iam: store is required")
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	o, err := newOIDCLogin(deps.OIDC)
	if err != nil {
		return nil, err
	}
	return &Service{log: deps.Logger, st: deps.Store, js: deps.JS, auth: deps.Auth, now: deps.Now, oidc: o}, nil
}

// ServiceNames are the gRPC services it registers.
func ServiceNames() []string {
	return []string{iamv1.IAMService_ServiceDesc.ServiceName, iamv1.AuditService_ServiceDesc.ServiceName}
}

// Register mounts the gRPC API.
func (s *Service) Register(g *grpc.Server) {
	iamv1.RegisterIAMServiceServer(g, &handler{s: s})
	iamv1.RegisterAuditServiceServer(g, &auditHandler{s: s})
}

// Start makes the default project on the first start (existing
// resources, which name no project, belong to it).
func (s *Service) Start(ctx context.Context) error {
	p := &iamv1.Project{Name: iam.DefaultProject, Description: "the project of every identity that names none",
		CreateTime: timestamppb.New(s.now()), Creator: "system"}
	if _, err := s.st.Commit(ctx, []store.Cond{{Key: iam.ProjectKey(p.Name)}}, store.Put(iam.ProjectKey(p.Name), p)); err != nil && !store.IsStale(err) {
		return fmt.Errorf("default project: %w", err)
	}
	return nil
}

// Run does nothing more: the API is all.
func (s *Service) Run(ctx context.Context) error { <-ctx.Done(); return nil }

// Drain has no work of its own to finish.
func (s *Service) Drain(context.Context) {}

// Stop has nothing to release.
func (s *Service) Stop(context.Context) {}

var identityRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}$`)

// Bootstrap makes sure the cluster-admin token in file exists: on the
// first start it makes one for the identity "admin" and writes its
// secret to file (0600); later it finds it, and puts it back in etcd if
// etcd lost it. It says whether it made the file.
func Bootstrap(ctx context.Context, st *store.Store, file string, now time.Time) (bool, error) {
	if b, err := os.ReadFile(file); err == nil {
		secret := strings.TrimSpace(string(b))
		id, ok := iam.ParseSecret(secret)
		if !ok {
			return false, fmt.Errorf("%s: not a bmaas token", file)
		}
		if _, err := st.Get(ctx, iam.TokenKey(id), &iamv1.StoredToken{}); !errors.Is(err, store.ErrNotFound) {
			return false, err
		}
		return false, putToken(ctx, st, adminToken(id, now), iam.Sum(secret))
	} else if !errors.Is(err, os.ErrNotExist) {
		return false, err
	}
	id, secret, sum := iam.NewSecret()
	if err := putToken(ctx, st, adminToken(id, now), sum); err != nil {
		return false, err
	}
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return false, err
	}
	return true, os.WriteFile(file, []byte(secret+"\n"), 0o600)
}

func adminToken(id string, now time.Time) *iamv1.Token {
	return &iamv1.Token{Id: id, Identity: "admin", Kind: iamv1.IdentityKind_IDENTITY_KIND_USER,
		Bindings:    []*iamv1.Binding{{Project: iam.AllProjects, Role: "cluster-admin"}},
		Description: "bootstrap admin token", CreateTime: timestamppb.New(now), Creator: "system"}
}

func putToken(ctx context.Context, st *store.Store, t *iamv1.Token, sum []byte) error {
	_, err := st.Commit(ctx, []store.Cond{{Key: iam.TokenKey(t.GetId())}},
		store.Put(iam.TokenKey(t.GetId()), &iamv1.StoredToken{Token: t, SecretSha256: sum}))
	return err
}

// principal is the caller (nil: anonymous, may do everything).
func principal(ctx context.Context) *iam.Principal { return iam.FromContext(ctx) }

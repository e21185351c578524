package iam

import (
	"context"
	"crypto/subtle"
	"errors"
	"log/slog"
	"sync"
	"time"

	iamv1 "github.com/bmaas/bmaas/api/bmaas/iam/v1"
	"github.com/bmaas/bmaas/pkg/store"
)

// ErrUnauthenticated is a missing, unknown, revoked or expired token.
var ErrUnauthenticated = errors.New("missing or invalid bearer token")

// Authority authenticates bearer tokens: the mesh's static token (the
// System principal) and the API tokens in etcd, which it follows with a
// watch. With no mesh token the platform asks none: every caller is
// anonymous and may do everything.
type Authority struct {
	mesh     []byte
	st       *store.Store
	cache    *store.Cache[*iamv1.StoredToken]
	projects *store.Cache[*iamv1.Project]
	now      func() time.Time

	mu       sync.RWMutex
	compiled map[string]compiled
}

// compiled is a token's principal, for the stored message it came from.
type compiled struct {
	src *iamv1.StoredToken
	p   *Principal
	err error
}

// NewAuthority follows the tokens of st (nil: only the mesh token);
// call Run. now is the clock (nil: time.Now).
func NewAuthority(meshToken string, st *store.Store, now func() time.Time, log *slog.Logger) *Authority {
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	a := &Authority{mesh: []byte(meshToken), st: st, now: now, compiled: map[string]compiled{}}
	if st != nil {
		a.cache = store.NewCache(st, TokensPrefix, func() *iamv1.StoredToken { return &iamv1.StoredToken{} }, log)
		a.projects = NewProjectsCache(st, log)
	}
	return a
}

// NewProjectsCache follows the projects of st (their quotas): the
// process makes one, which its guard and its services share.
func NewProjectsCache(st *store.Store, log *slog.Logger) *store.Cache[*iamv1.Project] {
	return store.NewCache(st, ProjectsPrefix, func() *iamv1.Project { return &iamv1.Project{} }, log)
}

// Projects is the cache of the projects the authority reads (nil
// without a store). Whoever made the authority runs it: the projects
// matter with or without tokens (quotas, the project header).
func (a *Authority) Projects() *store.Cache[*iamv1.Project] { return a.projects }

// Run follows the tokens until ctx ends.
func (a *Authority) Run(ctx context.Context) error {
	if a.cache == nil {
		<-ctx.Done()
		return nil
	}
	return a.cache.Run(ctx)
}

// ProjectKnown says whether project exists (the default project always
// does; so does any where the authority follows no store).
func (a *Authority) ProjectKnown(ctx context.Context, project string) bool {
	if project == DefaultProject || a == nil || a.projects == nil {
		return true
	}
	if _, ok, loaded := a.projects.Cached(ProjectKey(project)); ok || !loaded {
		return ok || !loaded
	}
	// Made a moment ago, before the watch brought it: etcd says.
	_, err := a.st.Get(ctx, ProjectKey(project), &iamv1.Project{})
	return !errors.Is(err, store.ErrNotFound)
}

// Enabled says whether the platform asks a token.
func (a *Authority) Enabled() bool { return a != nil && len(a.mesh) > 0 }

// Authenticate returns who an Authorization value's bearer token is:
// nil (anonymous) when the platform asks no token, System for the mesh
// token, the token's principal for a live API token, and
// ErrUnauthenticated for anything else.
func (a *Authority) Authenticate(authorization string) (*Principal, error) {
	if !a.Enabled() {
		return nil, nil
	}
	tok, ok := bearer(authorization)
	if !ok {
		return nil, ErrUnauthenticated
	}
	return a.Secret(tok)
}

// Secret is Authenticate for the bearer secret itself.
func (a *Authority) Secret(tok string) (*Principal, error) {
	if subtle.ConstantTimeCompare([]byte(tok), a.mesh) == 1 {
		return System, nil
	}
	id, ok := ParseSecret(tok)
	if !ok || a.cache == nil {
		return nil, ErrUnauthenticated
	}
	st, ok, loaded := a.cache.Cached(TokenKey(id))
	if !loaded {
		return nil, errNotLoaded
	}
	if !ok {
		// Made a moment ago, before the watch brought it: etcd says.
		st = &iamv1.StoredToken{}
		if _, err := a.st.Get(context.Background(), TokenKey(id), st); err != nil {
			return nil, ErrUnauthenticated
		}
	}
	if !secretMatches(tok, st.GetSecretSha256()) || st.GetToken().GetRevokeTime() != nil {
		return nil, ErrUnauthenticated
	}
	p, err := a.principal(id, st)
	if err != nil {
		return nil, ErrUnauthenticated
	}
	if !p.Expires.IsZero() && !a.now().Before(p.Expires) {
		return nil, ErrUnauthenticated
	}
	return p, nil
}

// errNotLoaded: the tokens are not read yet (the process is starting).
var errNotLoaded = errors.New("the tokens are not loaded yet; retry")

// NotLoaded says whether err is Authenticate's while the tokens load.
func NotLoaded(err error) bool { return errors.Is(err, errNotLoaded) }

// principal parses a stored token once per version of it.
func (a *Authority) principal(id string, st *iamv1.StoredToken) (*Principal, error) {
	a.mu.RLock()
	c, ok := a.compiled[id]
	a.mu.RUnlock()
	if ok && c.src == st {
		return c.p, c.err
	}
	p, err := NewPrincipal(st.GetToken())
	a.mu.Lock()
	if len(a.compiled) > 4096 {
		clear(a.compiled)
	}
	a.compiled[id] = compiled{src: st, p: p, err: err}
	a.mu.Unlock()
	return p, err
}

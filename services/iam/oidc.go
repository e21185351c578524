package iam

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"google.golang.org/protobuf/types/known/timestamppb"

	iamv1 "github.com/bmaas/bmaas/api/bmaas/iam/v1"
	"github.com/bmaas/bmaas/pkg/apierr"
	"github.com/bmaas/bmaas/pkg/iam"
)

// OIDCConfig is how people sign in with an OpenID Connect provider: the
// provider (discovered from its issuer), this platform's client, the
// claims that name a person and their groups, and the roles given to
// people and groups. Off while Issuer is empty.
type OIDCConfig struct {
	Issuer   string `yaml:"issuer"`
	ClientID string `yaml:"client_id"`
	// ClientSecret is the secret of the CLI's public client, for a
	// provider that asks one on the device flow; not a secret.
	ClientSecret  string `yaml:"client_secret"`
	UsernameClaim string `yaml:"username_claim"`
	GroupsClaim   string `yaml:"groups_claim"`
	// WebClientID and its secret's file are the console's client (the
	// authorization code flow); WebRedirectURL, when set, is the callback
	// the provider knows (default: this edge's /v1/login/oidc/callback as
	// the browser reached it).
	WebClientID         string `yaml:"web_client_id"`
	WebClientSecretFile string `yaml:"web_client_secret_file"`
	WebRedirectURL      string `yaml:"web_redirect_url"`
	// Scopes the CLI and the console ask for.
	Scopes []string `yaml:"scopes"`
	// Roles: SUBJECT=PROJECT:ROLE, SUBJECT being user:NAME or group:NAME.
	Roles      []string      `yaml:"roles"`
	SessionTTL time.Duration `yaml:"session_ttl"`
}

// RegisterFlags registers the flags with their defaults.
func (c *OIDCConfig) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.Issuer, "auth.oidc-issuer", "", "OpenID Connect issuer URL people sign in with (bmaas login, the console); off when empty")
	fs.StringVar(&c.ClientID, "auth.oidc-client-id", "bmaas", "OpenID Connect client id of bmaas (the audience of the ID tokens)")
	fs.StringVar(&c.ClientSecret, "auth.oidc-client-secret", "", "client secret of that public client, for providers that ask one on the device flow (not a secret)")
	fs.StringVar(&c.UsernameClaim, "auth.oidc-username-claim", "email", "ID token claim that names the person")
	fs.StringVar(&c.GroupsClaim, "auth.oidc-groups-claim", "groups", "ID token claim that lists the person's groups")
	fs.StringVar(&c.WebClientID, "auth.oidc-web-client-id", "", "OpenID Connect client id of the console (authorization code flow; off when empty)")
	fs.StringVar(&c.WebClientSecretFile, "auth.oidc-web-client-secret-file", "", "file holding the console client's secret")
	fs.StringVar(&c.WebRedirectURL, "auth.oidc-web-redirect-url", "", "the console's callback as the provider knows it (default: this edge's /v1/login/oidc/callback)")
	c.Scopes = []string{oidc.ScopeOpenID, "email", "profile"}
	fs.Func("auth.oidc-scopes", "comma-separated scopes people sign in with (default openid,email,profile; add groups where the provider asks it)",
		func(s string) error { c.Scopes = strings.Split(s, ","); return nil })
	fs.Func("auth.oidc-role", "a role given to people who sign in: user:NAME=PROJECT:ROLE or group:NAME=PROJECT:ROLE (repeatable; *:cluster-admin for the whole cluster)",
		func(s string) error { c.Roles = append(c.Roles, s); return nil })
	fs.DurationVar(&c.SessionTTL, "auth.oidc-session-ttl", 12*time.Hour, "how long the token of a sign-in lasts")
}

// Validate checks the roles parse.
func (c *OIDCConfig) Validate() error {
	if c.Issuer == "" {
		return nil
	}
	if c.ClientID == "" {
		return errors.New("auth.oidc-client-id: required with --auth.oidc-issuer")
	}
	if c.SessionTTL < time.Minute {
		return fmt.Errorf("auth.oidc-session-ttl: must be at least 1m, got %s", c.SessionTTL)
	}
	_, err := c.rules()
	return err
}

// roleRule gives binding to subject ("user:NAME" or "group:NAME").
type roleRule struct {
	subject string
	binding *iamv1.Binding
}

func (c *OIDCConfig) rules() ([]roleRule, error) {
	var out []roleRule
	for _, r := range c.Roles {
		subject, grant, ok := strings.Cut(r, "=")
		project, role, ok2 := strings.Cut(grant, ":")
		kind, name, ok3 := strings.Cut(subject, ":")
		if !ok || !ok2 || !ok3 || name == "" || (kind != "user" && kind != "group") {
			return nil, fmt.Errorf("auth.oidc-role %q: want user:NAME=PROJECT:ROLE or group:NAME=PROJECT:ROLE", r)
		}
		b := &iamv1.Binding{Project: project, Role: role}
		if _, err := iam.NewPrincipal(&iamv1.Token{Bindings: []*iamv1.Binding{b}}); err != nil {
			return nil, fmt.Errorf("auth.oidc-role %q: %w", r, err)
		}
		out = append(out, roleRule{subject: subject, binding: b})
	}
	return out, nil
}

// discovery is an OpenID Connect provider found from its issuer on
// first use (and again after a failure), not at start: a provider down
// while the platform starts delays no one but who signs in.
type discovery struct {
	issuer string
	mu     sync.Mutex
	p      *oidc.Provider
}

func (d *discovery) provider(ctx context.Context) (*oidc.Provider, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.p == nil {
		p, err := oidc.NewProvider(ctx, d.issuer)
		if err != nil {
			return nil, fmt.Errorf("OIDC provider %s: %w", d.issuer, err)
		}
		d.p = p
	}
	return d.p, nil
}

// oidcLogin verifies ID tokens.
type oidcLogin struct {
	cfg   OIDCConfig
	rules []roleRule
	disc  *discovery
}

func newOIDCLogin(cfg OIDCConfig) (*oidcLogin, error) {
	if cfg.Issuer == "" {
		return nil, nil
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	rules, _ := cfg.rules()
	return &oidcLogin{cfg: cfg, rules: rules, disc: &discovery{issuer: cfg.Issuer}}, nil
}

func (o *oidcLogin) verify(ctx context.Context, raw string) (*oidc.IDToken, error) {
	p, err := o.disc.provider(ctx)
	if err != nil {
		return nil, err
	}
	// The CLI's client and the console's both sign people in: the
	// audience is checked below.
	v := p.Verifier(&oidc.Config{SkipClientIDCheck: true})
	tok, err := v.Verify(ctx, raw)
	if err != nil {
		return nil, err
	}
	if !slices.ContainsFunc(tok.Audience, func(a string) bool { return a == o.cfg.ClientID || a != "" && a == o.cfg.WebClientID }) {
		return nil, fmt.Errorf("the token is for %v, not this platform's clients", tok.Audience)
	}
	return tok, nil
}

// who reads the person's name and groups from the token's claims.
func (o *oidcLogin) who(tok *oidc.IDToken) (string, []string, error) {
	var claims map[string]any
	if err := tok.Claims(&claims); err != nil {
		return "", nil, err
	}
	name, _ := claims[o.cfg.UsernameClaim].(string)
	if name == "" {
		return "", nil, apierr.Invalid("id_token", "no %q claim names the person (--auth.oidc-username-claim)", o.cfg.UsernameClaim)
	}
	var groups []string
	switch g := claims[o.cfg.GroupsClaim].(type) {
	case []any:
		for _, v := range g {
			if s, ok := v.(string); ok {
				groups = append(groups, s)
			}
		}
	case string:
		groups = strings.Fields(g)
	}
	return name, groups, nil
}

// bindings are the roles of a person: theirs and their groups'.
func (o *oidcLogin) bindings(name string, groups []string) []*iamv1.Binding {
	var out []*iamv1.Binding
	for _, r := range o.rules {
		kind, subject, _ := strings.Cut(r.subject, ":")
		if kind == "user" && subject == name || kind == "group" && slices.Contains(groups, subject) {
			if !slices.ContainsFunc(out, func(b *iamv1.Binding) bool {
				return b.GetProject() == r.binding.GetProject() && b.GetRole() == r.binding.GetRole()
			}) {
				out = append(out, r.binding)
			}
		}
	}
	return out
}

func (h *handler) GetAuthConfig(context.Context, *iamv1.GetAuthConfigRequest) (*iamv1.GetAuthConfigResponse, error) {
	out := &iamv1.GetAuthConfigResponse{Auth: h.s.auth.Enabled()}
	if o := h.s.oidc; o != nil {
		out.OidcIssuer, out.OidcClientId, out.OidcClientSecret = o.cfg.Issuer, o.cfg.ClientID, o.cfg.ClientSecret
		out.OidcWebLogin = o.cfg.WebClientID != ""
		out.OidcScopes = o.cfg.Scopes
		if len(out.OidcScopes) == 0 {
			out.OidcScopes = []string{oidc.ScopeOpenID, "email", "profile"}
		}
	}
	return out, nil
}

// Login verifies an ID token and makes the person a session token.
func (h *handler) Login(ctx context.Context, req *iamv1.LoginRequest) (*iamv1.LoginResponse, error) {
	o := h.s.oidc
	if o == nil {
		return nil, apierr.Precondition("this platform signs no one in with OIDC (--auth.oidc-issuer is not set): use an API token")
	}
	if req.GetIdToken() == "" {
		return nil, apierr.Invalid("id_token", "required")
	}
	tok, err := o.verify(ctx, req.GetIdToken())
	if err != nil {
		return nil, apierr.Invalid("id_token", "not a valid ID token of %s for %s: %v", o.cfg.Issuer, o.cfg.ClientID, err)
	}
	name, groups, err := o.who(tok)
	if err != nil {
		return nil, err
	}
	bs := o.bindings(name, groups)
	if len(bs) == 0 {
		return nil, apierr.Denied("%s has no role on any project: an admin gives one with --auth.oidc-role user:%s=PROJECT:ROLE (or to one of their groups)", name, name)
	}
	now := h.s.now()
	id, secret, sum := iam.NewSecret()
	t := &iamv1.Token{Id: id, Identity: name, Kind: iamv1.IdentityKind_IDENTITY_KIND_USER, Bindings: bs,
		Description: "signed in with OIDC", CreateTime: timestamppb.New(now), Creator: "oidc",
		ExpireTime: timestamppb.New(now.Add(o.cfg.SessionTTL))}
	if err := putToken(ctx, h.s.st, t, sum); err != nil {
		return nil, err
	}
	return &iamv1.LoginResponse{Token: t, Secret: secret}, nil
}

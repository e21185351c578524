package iam

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	iamv1 "github.com/bmaas/bmaas/api/bmaas/iam/v1"
)

// The console's sign-in, by the authorization code flow with PKCE on
// the server (the console is static and keeps no secret):
//
//	GET /v1/login/oidc           redirects to the provider, the state and
//	                             the PKCE verifier in a short-lived
//	                             HttpOnly cookie
//	GET /v1/login/oidc/callback  checks the state, exchanges the code for
//	                             the ID token with the web client's secret,
//	                             signs the person in (Login) and hands the
//	                             session token to the console in the URL's
//	                             fragment (/ui/#token=...), which no
//	                             server or proxy log sees
const (
	WebLoginPath    = "/v1/login/oidc"
	WebCallbackPath = "/v1/login/oidc/callback"
	webCookie       = "bmaas_oidc"
)

// WebLogin serves those two routes.
type WebLogin struct {
	cfg    OIDCConfig
	secret string
	login  func(ctx context.Context, idToken string) (*iamv1.LoginResponse, error)
	log    *slog.Logger

	disc *discovery
}

// NewWebLogin is the console's sign-in with cfg's web client (nil when
// it has none); login signs a person in with an ID token (the IAM API's
// Login).
func NewWebLogin(cfg OIDCConfig, login func(ctx context.Context, idToken string) (*iamv1.LoginResponse, error), log *slog.Logger) (*WebLogin, error) {
	if cfg.Issuer == "" || cfg.WebClientID == "" {
		return nil, nil
	}
	w := &WebLogin{cfg: cfg, login: login, log: log, disc: &discovery{issuer: cfg.Issuer}}
	if cfg.WebClientSecretFile != "" {
		b, err := os.ReadFile(cfg.WebClientSecretFile)
		if err != nil {
			return nil, fmt.Errorf("auth.oidc-web-client-secret-file: %w", err)
		}
		w.secret = strings.TrimSpace(string(b))
	}
	return w, nil
}

// Register mounts the routes.
func (w *WebLogin) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET "+WebLoginPath, w.start)
	mux.HandleFunc("GET "+WebCallbackPath, w.callback)
}

// oauth is the web client's configuration for a request (its redirect
// URL is this edge's callback, as the browser reached it).
func (w *WebLogin) oauth(ctx context.Context, r *http.Request) (*oauth2.Config, error) {
	p, err := w.disc.provider(ctx)
	if err != nil {
		return nil, err
	}
	redirect := w.cfg.WebRedirectURL
	if redirect == "" {
		scheme := "http"
		if r.TLS != nil {
			scheme = "https"
		}
		redirect = scheme + "://" + r.Host + WebCallbackPath
	}
	scopes := w.cfg.Scopes
	if len(scopes) == 0 {
		scopes = []string{oidc.ScopeOpenID, "email", "profile"}
	}
	return &oauth2.Config{ClientID: w.cfg.WebClientID, ClientSecret: w.secret, Endpoint: p.Endpoint(), RedirectURL: redirect, Scopes: scopes}, nil
}

func (w *WebLogin) start(rw http.ResponseWriter, r *http.Request) {
	oc, err := w.oauth(r.Context(), r)
	if err != nil {
		w.fail(rw, r, err)
		return
	}
	var b [24]byte
	_, _ = rand.Read(b[:])
	state, verifier := base64.RawURLEncoding.EncodeToString(b[:]), oauth2.GenerateVerifier()
	http.SetCookie(rw, &http.Cookie{Name: webCookie, Value: state + "." + verifier, Path: WebLoginPath, MaxAge: 600,
		HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteLaxMode})
	http.Redirect(rw, r, oc.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier)), http.StatusFound)
}

func (w *WebLogin) callback(rw http.ResponseWriter, r *http.Request) {
	http.SetCookie(rw, &http.Cookie{Name: webCookie, Value: "", Path: WebLoginPath, MaxAge: -1, HttpOnly: true})
	q := r.URL.Query()
	if e := q.Get("error"); e != "" {
		w.fail(rw, r, fmt.Errorf("the provider refused the sign-in: %s %s", e, q.Get("error_description")))
		return
	}
	c, err := r.Cookie(webCookie)
	state, verifier, ok := strings.Cut(func() string {
		if err != nil {
			return ""
		}
		return c.Value
	}(), ".")
	if !ok || q.Get("state") == "" || q.Get("state") != state {
		w.fail(rw, r, fmt.Errorf("the sign-in is not this browser's, or took over 10 minutes: start again"))
		return
	}
	oc, err := w.oauth(r.Context(), r)
	if err != nil {
		w.fail(rw, r, err)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	tok, err := oc.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		w.fail(rw, r, fmt.Errorf("code exchange at %s: %w", oc.Endpoint.TokenURL, err))
		return
	}
	idToken, _ := tok.Extra("id_token").(string)
	if idToken == "" {
		w.fail(rw, r, fmt.Errorf("the provider gave no ID token (is the openid scope allowed for client %s?)", w.cfg.WebClientID))
		return
	}
	resp, err := w.login(ctx, idToken)
	if err != nil {
		w.fail(rw, r, err)
		return
	}
	http.Redirect(rw, r, "/ui/#token="+url.QueryEscape(resp.GetSecret()), http.StatusFound)
}

// fail sends the browser back to the console's sign-in with the reason.
func (w *WebLogin) fail(rw http.ResponseWriter, r *http.Request, err error) {
	if w.log != nil {
		w.log.Info("console sign-in failed", "err", err)
	}
	http.Redirect(rw, r, "/ui/#/signin?error="+url.QueryEscape(err.Error()), http.StatusFound)
}

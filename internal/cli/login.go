package cli

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/spf13/cobra"
	"golang.org/x/oauth2"

	iamv1 "github.com/bmaas/bmaas/api/bmaas/iam/v1"
)

// loginCommand signs a person in with the platform's OpenID Connect
// provider by the device flow (RFC 8628): it shows a code to enter at the
// provider's page, waits for the sign-in, and exchanges the ID token for
// a bmaas session token.
func loginCommand(g *globals) *cobra.Command {
	var tokenFile string
	var wait time.Duration
	cmd := &cobra.Command{
		Use:   "login",
		Short: "Sign in with the platform's OpenID Connect provider (device flow) and get a session token",
		Long: "Sign in with the platform's OpenID Connect provider: bmaas shows a link and a code to enter there\n" +
			"(on any device), waits for the sign-in, and prints a session token with the roles the platform\n" +
			"gives you (--auth.oidc-role). Send it as --token or BMAAS_TOKEN, or keep it in --token-file.",
		Example: "  bmaas login --token-file ~/.config/bmaas/token\n  export BMAAS_TOKEN=$(cat ~/.config/bmaas/token)",
		Args:    args("no arguments", 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if wait <= 0 {
				return usageErrorf("--wait must be positive, got %s", wait)
			}
			return g.withClient(cmd, func(ctx context.Context, c *client) error {
				cctx, cancel := c.call(ctx)
				conf, err := c.iam().GetAuthConfig(cctx, &iamv1.GetAuthConfigRequest{})
				cancel()
				if err != nil {
					return err
				}
				if conf.GetOidcIssuer() == "" {
					return fmt.Errorf("the platform at %s signs no one in with OIDC: ask its admin for an API token (bmaas token create)", g.server)
				}
				ctx, cancel = context.WithTimeout(ctx, wait)
				defer cancel()
				idToken, err := deviceSignIn(ctx, cmd, conf)
				if err != nil {
					return err
				}
				cctx, cancel2 := c.call(ctx)
				defer cancel2()
				resp, err := c.iam().Login(cctx, &iamv1.LoginRequest{IdToken: idToken})
				if err != nil {
					return err
				}
				if tokenFile != "" {
					if err := os.WriteFile(tokenFile, []byte(resp.GetSecret()+"\n"), 0o600); err != nil {
						return fmt.Errorf("--token-file: %w", err)
					}
				}
				return g.printer(cmd.OutOrStdout()).print(resp, func(t *table) {
					t.row("IDENTITY", resp.GetToken().GetIdentity())
					t.row("TOKEN", resp.GetToken().GetId())
					t.row("ROLES", rolesString(resp.GetToken().GetBindings()))
					t.row("EXPIRES", resp.GetToken().GetExpireTime().AsTime().Local().Format(time.RFC3339))
					if tokenFile != "" {
						t.row("SAVED", tokenFile)
					} else {
						t.row("SECRET", resp.GetSecret())
					}
				})
			})
		},
	}
	cmd.Flags().StringVar(&tokenFile, "token-file", "", "write the session token to this file (0600) instead of printing it")
	cmd.Flags().DurationVar(&wait, "wait", 10*time.Minute, "how long to wait for the sign-in at the provider")
	return cmd
}

// deviceSignIn runs the device flow with the provider conf names and
// returns the ID token it gives.
func deviceSignIn(ctx context.Context, cmd *cobra.Command, conf *iamv1.GetAuthConfigResponse) (string, error) {
	provider, err := oidc.NewProvider(ctx, conf.GetOidcIssuer())
	if err != nil {
		return "", fmt.Errorf("OIDC provider %s: %w", conf.GetOidcIssuer(), err)
	}
	ep := provider.Endpoint()
	if ep.DeviceAuthURL == "" {
		return "", fmt.Errorf("OIDC provider %s offers no device flow (device_authorization_endpoint)", conf.GetOidcIssuer())
	}
	oc := &oauth2.Config{ClientID: conf.GetOidcClientId(), ClientSecret: conf.GetOidcClientSecret(), Endpoint: ep,
		Scopes: conf.GetOidcScopes()}
	da, err := oc.DeviceAuth(ctx)
	if err != nil {
		return "", fmt.Errorf("device authorization at %s: %w", ep.DeviceAuthURL, err)
	}
	if da.VerificationURIComplete != "" {
		fmt.Fprintf(cmd.ErrOrStderr(), "Open %s to sign in (code %s)\n", da.VerificationURIComplete, da.UserCode)
	} else {
		fmt.Fprintf(cmd.ErrOrStderr(), "Open %s and enter the code %s\n", da.VerificationURI, da.UserCode)
	}
	tok, err := oc.DeviceAccessToken(ctx, da)
	if err != nil {
		return "", fmt.Errorf("sign-in: %w", err)
	}
	idToken, _ := tok.Extra("id_token").(string)
	if idToken == "" {
		return "", fmt.Errorf("OIDC provider %s gave no ID token (is the openid scope allowed for client %s?)", conf.GetOidcIssuer(), conf.GetOidcClientId())
	}
	return idToken, nil
}

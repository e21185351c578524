//go:build integration

package tests

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/zitadel/oidc/v3/example/server/exampleop"
	"github.com/zitadel/oidc/v3/example/server/storage"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	iamv1 "github.com/bmaas/bmaas/api/bmaas/iam/v1"
	"github.com/bmaas/bmaas/internal/app"
	"github.com/bmaas/bmaas/tests/harness"
)

// people is the provider's directory: the ID is the name, so that the
// device flow's subject (the name typed at sign-in) is the person.
type people map[string]*storage.User

func (p people) GetUserByID(id string) *storage.User { return p[id] }
func (p people) GetUserByUsername(name string) *storage.User {
	return p[name]
}
func (p people) ExampleClientID() string { return "service" }

// oidcProvider runs a real OpenID Connect provider (zitadel's OP library
// with its example storage) with a device-flow client "bmaas" and two
// people, alice (given a role) and mallory (given none).
func oidcProvider(t *testing.T) *httptest.Server {
	t.Helper()
	dir := people{
		"alice@example.com":   {ID: "alice@example.com", Username: "alice@example.com", Password: "pw-alice", Email: "alice@example.com", EmailVerified: true},
		"mallory@example.com": {ID: "mallory@example.com", Username: "mallory@example.com", Password: "pw-mallory", Email: "mallory@example.com"},
	}
	srv := httptest.NewUnstartedServer(nil)
	srv.Start()
	issuer := srv.URL
	srv.Config.Handler = exampleop.SetupServer(issuer, storage.NewStorageWithClients(dir, map[string]*storage.Client{"bmaas": storage.DeviceClient("bmaas", "cli-secret")}), slog.New(slog.DiscardHandler), false)
	t.Cleanup(srv.Close)
	return srv
}

// approve signs in at the provider's device page as a person would:
// the code, the name and password, then "allow".
func approve(t *testing.T, verifyURL, code, user, password string) {
	t.Helper()
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	web := &http.Client{Jar: jar}
	base, err := url.Parse(verifyURL)
	require.NoError(t, err)
	base.RawQuery = ""
	resp, err := web.PostForm(base.JoinPath("login").String(), url.Values{"user_code": {code}, "username": {user}, "password": {password}})
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	resp, err = web.PostForm(base.JoinPath("confirm").String(), url.Values{"action": {"allowed"}})
	require.NoError(t, err)
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Contains(t, string(body), "Device authorization allowed")
}

// login runs `bmaas login` as a person would: it reads the link and code
// the command shows, signs in at the provider, and waits for the
// command.
func login(t *testing.T, c *harness.Cluster, user, password string, extra ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, harness.Binary(t), append([]string{"login", "--server", c.Addrs.GRPC}, extra...)...)
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	var out strings.Builder
	cmd.Stdout = &out
	require.NoError(t, cmd.Start())
	re := regexp.MustCompile(`Open (\S+) .*code (\S+?)\)?$`)
	sc := bufio.NewScanner(stderr)
	var rest strings.Builder
	for sc.Scan() {
		if m := re.FindStringSubmatch(sc.Text()); m != nil {
			approve(t, m[1], m[2], user, password)
		} else {
			rest.WriteString(sc.Text() + "\n")
		}
	}
	if err := cmd.Wait(); err != nil {
		return rest.String(), err
	}
	return out.String(), nil
}

// TestOIDCLogin: people sign in with a real OpenID Connect provider by
// the device flow (bmaas login); the platform verifies the ID token and
// gives a session token with the roles --auth.oidc-role maps to the
// person, which then works as any token; a person with no role is
// refused, and so is a forged ID token.
func TestOIDCLogin(t *testing.T) {
	t.Parallel()
	op := oidcProvider(t)
	c, admin := authCluster(t, func(cfg *app.Config) {
		cfg.OIDC.Issuer, cfg.OIDC.ClientID, cfg.OIDC.ClientSecret = op.URL, "bmaas", "cli-secret"
		cfg.OIDC.UsernameClaim = "sub"
		cfg.OIDC.Roles = []string{"user:alice@example.com=default:editor"}
	})
	ctx := t.Context()
	anon := iamv1.NewIAMServiceClient(dialAs(t, c.Addrs.GRPC, ""))
	conf, err := anon.GetAuthConfig(ctx, &iamv1.GetAuthConfigRequest{})
	require.NoError(t, err, "the sign-in configuration needs no token")
	require.Equal(t, op.URL, conf.GetOidcIssuer())

	tokenFile := filepath.Join(t.TempDir(), "token")
	out, err := login(t, c, "alice@example.com", "pw-alice", "--token-file", tokenFile, "-o", "json")
	require.NoError(t, err, out)
	var got struct {
		Token struct {
			Identity string `json:"identity"`
		} `json:"token"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &got), out)
	require.Equal(t, "alice@example.com", got.Token.Identity)
	b, err := os.ReadFile(tokenFile)
	require.NoError(t, err)
	session := strings.TrimSpace(string(b))
	who, err := iamv1.NewIAMServiceClient(dialAs(t, c.Addrs.GRPC, session)).WhoAmI(ctx, &iamv1.WhoAmIRequest{})
	require.NoError(t, err)
	require.Equal(t, "alice@example.com", who.GetIdentity())
	require.Equal(t, iamv1.IdentityKind_IDENTITY_KIND_USER, who.GetKind())
	require.Equal(t, "editor", who.GetBindings()[0].GetRole())
	// The session is a token like any other: listed, and revocable.
	list, err := iamv1.NewIAMServiceClient(dialAs(t, c.Addrs.GRPC, admin)).ListTokens(ctx, &iamv1.ListTokensRequest{Identity: "alice@example.com"})
	require.NoError(t, err)
	require.Len(t, list.GetTokens(), 1)
	require.NotNil(t, list.GetTokens()[0].GetExpireTime(), "a session ends")

	out, err = login(t, c, "mallory@example.com", "pw-mallory")
	require.Error(t, err)
	require.Contains(t, out, "mallory@example.com has no role")

	// The sign-ins are in the trail: alice's as hers, mallory's refused.
	audit := iamv1.NewAuditServiceClient(dialAs(t, c.Addrs.GRPC, admin))
	eventually(t, 10*time.Second, "the sign-ins are in the trail", func() bool {
		resp, err := audit.ListAuditRecords(ctx, &iamv1.ListAuditRecordsRequest{PageSize: 1000})
		require.NoError(t, err)
		var ok, refused bool
		for _, r := range resp.GetRecords() {
			if strings.HasSuffix(r.GetMethod(), "/Login") {
				ok = ok || r.GetIdentity() == "alice@example.com" && r.GetCode() == "OK" && r.GetTokenId() != ""
				refused = refused || r.GetCode() == "PermissionDenied" && strings.Contains(r.GetMessage(), "mallory")
			}
		}
		return ok && refused
	})

	_, err = anon.Login(ctx, &iamv1.LoginRequest{IdToken: "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhZG1pbiJ9.c2lnbmF0dXJl"})
	require.Equal(t, codes.InvalidArgument, status.Code(err), "%v", err)
	require.Contains(t, status.Convert(err).Message(), "id_token")
}

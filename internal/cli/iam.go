package cli

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	iamv1 "github.com/bmaas/bmaas/api/bmaas/iam/v1"
	"github.com/bmaas/bmaas/pkg/authz"
)

// allProjects is the project of the cluster-admin role.
const allProjects = "*"

func (c *client) iam() iamv1.IAMServiceClient { return iamv1.NewIAMServiceClient(c.conn) }

func projectCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "project",
		Aliases: []string{"projects"},
		Short:   "Projects: the teams' spaces that resources belong to and roles are granted on",
		Long: "A project holds resources and the roles granted on it (bmaas token create --role PROJECT=ROLE).\n" +
			"The project \"default\" always exists: resources and identities that name no project use it.",
	}
	cmd.AddCommand(projectCreateCommand(g), projectListCommand(g), projectGetCommand(g), projectDeleteCommand(g))
	return cmd
}

// projectFields name what the user typed for the fields of a project's errors.
var projectFields = fieldNames{"project.name": "NAME", "name": "NAME", "project.description": "--description"}

func projectCreateCommand(g *globals) *cobra.Command {
	var description string
	cmd := &cobra.Command{
		Use:     "create NAME [--description D]",
		Short:   "Create a project",
		Example: "  bmaas project create vision --description 'image models'",
		Args:    args("NAME", 1),
		RunE: func(cmd *cobra.Command, a []string) error {
			return g.withClient(cmd, func(ctx context.Context, c *client) error {
				ctx, cancel := c.call(ctx)
				defer cancel()
				resp, err := c.iam().CreateProject(ctx, &iamv1.CreateProjectRequest{
					Project: &iamv1.Project{Name: a[0], Description: description}})
				if err != nil {
					return projectFields.rename(err, a)
				}
				return printProject(g, cmd, resp.GetProject())
			})
		},
	}
	cmd.Flags().StringVar(&description, "description", "", "what the project is for")
	return cmd
}

func projectListCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the projects you have a role in (all of them for a cluster-admin)",
		Args:  args("no arguments", 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.withClient(cmd, func(ctx context.Context, c *client) error {
				items, err := allPages(ctx, c, func(ctx context.Context, token string) ([]*iamv1.Project, string, error) {
					resp, err := c.iam().ListProjects(ctx, &iamv1.ListProjectsRequest{PageToken: token})
					return resp.GetProjects(), resp.GetNextPageToken(), err
				})
				if err != nil {
					return err
				}
				all := &iamv1.ListProjectsResponse{Projects: items}
				return g.printer(cmd.OutOrStdout()).print(all, func(t *table) {
					t.row("NAME", "DESCRIPTION", "CREATOR", "CREATED")
					for _, p := range items {
						t.row(p.GetName(), orDash(p.GetDescription()), orDash(p.GetCreator()), formatTime(p.GetCreateTime()))
					}
				})
			})
		},
	}
}

func projectGetCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "get NAME",
		Short: "Show a project",
		Args:  args("NAME", 1),
		RunE: func(cmd *cobra.Command, a []string) error {
			return g.withClient(cmd, func(ctx context.Context, c *client) error {
				ctx, cancel := c.call(ctx)
				defer cancel()
				resp, err := c.iam().GetProject(ctx, &iamv1.GetProjectRequest{Name: a[0]})
				if err != nil {
					return projectFields.rename(err, a)
				}
				return printProject(g, cmd, resp.GetProject())
			})
		},
	}
}

func projectDeleteCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete a project (\"default\" stays)",
		Args:  args("NAME", 1),
		RunE: func(cmd *cobra.Command, a []string) error {
			return g.withClient(cmd, func(ctx context.Context, c *client) error {
				ctx, cancel := c.call(ctx)
				defer cancel()
				if _, err := c.iam().DeleteProject(ctx, &iamv1.DeleteProjectRequest{Name: a[0]}); err != nil {
					return projectFields.rename(err, a)
				}
				return done(g, cmd, "project %s deleted", a[0])
			})
		},
	}
}

func printProject(g *globals, cmd *cobra.Command, p *iamv1.Project) error {
	return g.printer(cmd.OutOrStdout()).print(p, func(t *table) {
		t.row("NAME", p.GetName())
		t.row("DESCRIPTION", orDash(p.GetDescription()))
		t.row("CREATOR", orDash(p.GetCreator()))
		t.row("CREATED", formatTime(p.GetCreateTime()))
	})
}

func tokenCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "token",
		Aliases: []string{"tokens"},
		Short:   "API tokens of users and service accounts, with their roles per project",
		Long: "A token is the bearer secret a user or a service account sends (--token, or BMAAS_TOKEN). It holds\n" +
			"roles on projects: viewer (read), editor (also write and call models), admin (also run commands\n" +
			"and change policies), or cluster-admin on every project ('*=cluster-admin'). A token made with\n" +
			"--deployment may only call that deployment. The secret is shown once, when the token is made or\n" +
			"rotated; the platform keeps only its SHA-256.",
	}
	cmd.AddCommand(tokenCreateCommand(g), tokenListCommand(g), tokenGetCommand(g), tokenRevokeCommand(g),
		tokenRotateCommand(g))
	return cmd
}

// parseRoles reads --role PROJECT=ROLE values and --deployment
// PROJECT/DEPLOYMENT values into bindings, and returns beside them what
// the user typed for each (to name it in the server's errors).
func parseRoles(roles, deployments []string) ([]*iamv1.Binding, []string, error) {
	var out []*iamv1.Binding
	var typed []string
	for _, v := range roles {
		project, role, ok := strings.Cut(v, "=")
		if !ok || project == "" || role == "" {
			return nil, nil, usageErrorf("--role %s: want PROJECT=ROLE (e.g. --role vision=editor, or --role '*=cluster-admin')", v)
		}
		r, err := authz.ParseRole(role)
		if err != nil {
			return nil, nil, usageErrorf("--role %s: %v", v, err)
		}
		switch {
		case r == authz.ClusterAdmin && project != allProjects:
			return nil, nil, usageErrorf("--role %s: cluster-admin is granted on every project: --role '*=cluster-admin'", v)
		case r != authz.ClusterAdmin && project == allProjects:
			return nil, nil, usageErrorf("--role %s: project %q takes only cluster-admin", v, allProjects)
		}
		out = append(out, &iamv1.Binding{Project: project, Role: role})
		typed = append(typed, "--role "+v)
	}
	for _, v := range deployments {
		project, deployment, ok := strings.Cut(v, "/")
		if !ok || project == "" || deployment == "" || strings.Contains(deployment, "/") {
			return nil, nil, usageErrorf("--deployment %s: want PROJECT/DEPLOYMENT (e.g. --deployment default/iris)", v)
		}
		if project == allProjects {
			return nil, nil, usageErrorf("--deployment %s: a deployment belongs to one project, not %q", v, allProjects)
		}
		out = append(out, &iamv1.Binding{Project: project, Deployment: deployment})
		typed = append(typed, "--deployment "+v)
	}
	return out, typed, nil
}

// renameBindings rewrites a server error about bindings[N] (or one of its
// fields) to name the --role or --deployment value that made binding N.
func renameBindings(err error, typed []string) error {
	s, ok := status.FromError(err)
	if !ok || err == nil {
		return err
	}
	rest, ok := strings.CutPrefix(s.Message(), "bindings[")
	if !ok {
		return err
	}
	n, tail, ok := strings.Cut(rest, "]")
	i, convErr := strconv.Atoi(n)
	if !ok || convErr != nil || i < 0 || i >= len(typed) {
		return err
	}
	if field, ok := strings.CutPrefix(tail, "."); ok { // bindings[N].project: ...
		if _, msg, ok := strings.Cut(field, ": "); ok {
			tail = ": " + msg
		}
	}
	msg, ok := strings.CutPrefix(tail, ": ")
	if !ok {
		return err
	}
	msg = strings.TrimPrefix(msg, "bindings["+n+"]: ")
	return &statusError{s: status.New(s.Code(), typed[i]+": "+msg)}
}

// tokenFields name the flags for the fields of a token's errors.
var tokenFields = fieldNames{"identity": "--identity", "kind": "--service-account", "bindings": "--role",
	"ttl": "--ttl", "description": "--description", "id": "ID", "overlap": "--overlap"}

func tokenCreateCommand(g *globals) *cobra.Command {
	var identity, description string
	var roles, deployments []string
	var serviceAccount bool
	var ttl time.Duration
	cmd := &cobra.Command{
		Use:   "create --identity NAME [--service-account] --role PROJECT=ROLE... [--deployment PROJECT/DEPLOYMENT]... [--ttl 720h] [--description D]",
		Short: "Make a token for a user or a service account; its secret is shown only now",
		Long: "Make a token with the roles --role names, PROJECT=ROLE with ROLE one of viewer, editor, admin\n" +
			"(or '*=cluster-admin': every project, and the cluster itself). --deployment PROJECT/DEPLOYMENT\n" +
			"grants only calling that deployment (and giving it feedback). Granting a role needs the admin\n" +
			"role of its project. The secret is printed once: send it as --token or BMAAS_TOKEN.",
		Example: "  bmaas token create --identity alice --role vision=editor --role default=viewer\n" +
			"  bmaas token create --identity ci --service-account --role vision=editor --ttl 2160h\n" +
			"  bmaas token create --identity shop-frontend --service-account --deployment=vision/classifier\n" +
			"  bmaas token create --identity ops --role '*=cluster-admin'",
		Args: args("no arguments", 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if identity == "" {
				return usageErrorf("--identity is required: the user's or service account's name")
			}
			if len(roles) == 0 && len(deployments) == 0 {
				return usageErrorf("--role PROJECT=ROLE (or --deployment PROJECT/DEPLOYMENT) is required: a token holds at least one role")
			}
			bindings, typed, err := parseRoles(roles, deployments)
			if err != nil {
				return err
			}
			if ttl < 0 {
				return usageErrorf("--ttl must not be negative, got %s (0: the token never expires)", ttl)
			}
			req := &iamv1.CreateTokenRequest{Identity: identity, Kind: iamv1.IdentityKind_IDENTITY_KIND_USER,
				Bindings: bindings, Description: description}
			if serviceAccount {
				req.Kind = iamv1.IdentityKind_IDENTITY_KIND_SERVICE_ACCOUNT
			}
			if ttl > 0 {
				req.Ttl = durationpb.New(ttl)
			}
			return g.withClient(cmd, func(ctx context.Context, c *client) error {
				ctx, cancel := c.call(ctx)
				defer cancel()
				resp, err := c.iam().CreateToken(ctx, req)
				if err != nil {
					return tokenFields.rename(renameBindings(err, typed), nil)
				}
				return g.printer(cmd.OutOrStdout()).print(resp, func(t *table) {
					tokenRows(t, resp.GetToken())
					t.row("SECRET", resp.GetSecret())
					t.row("")
					t.row("The secret is shown only now: keep it (send it as --token or BMAAS_TOKEN).")
				})
			})
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&identity, "identity", "", "the user's or service account's name")
	fl.BoolVar(&serviceAccount, "service-account", false, "the identity is a program (CI, a pipeline, an application), not a person")
	fl.StringArrayVar(&roles, "role", nil, "a role on a project, PROJECT=ROLE with ROLE one of viewer, editor, admin; '*=cluster-admin' (repeatable)")
	fl.StringArrayVar(&deployments, "deployment", nil, "PROJECT/DEPLOYMENT: the token may call that deployment only (repeatable)")
	fl.DurationVar(&ttl, "ttl", 720*time.Hour, "the token expires this long from now (0: never)")
	fl.StringVar(&description, "description", "", "what the token is for")
	return cmd
}

func tokenListCommand(g *globals) *cobra.Command {
	var identity string
	var all bool
	cmd := &cobra.Command{
		Use:   "list [--identity NAME] [--all]",
		Short: "List the tokens you may see (yours, and those of the projects you administer)",
		Args:  args("no arguments", 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.withClient(cmd, func(ctx context.Context, c *client) error {
				items, err := allPages(ctx, c, func(ctx context.Context, token string) ([]*iamv1.Token, string, error) {
					resp, err := c.iam().ListTokens(ctx, &iamv1.ListTokensRequest{Identity: identity, ShowInactive: all, PageToken: token})
					return resp.GetTokens(), resp.GetNextPageToken(), err
				})
				if err != nil {
					return fieldNames{"identity": "--identity"}.rename(err, nil)
				}
				resp := &iamv1.ListTokensResponse{Tokens: items}
				now := time.Now()
				return g.printer(cmd.OutOrStdout()).print(resp, func(t *table) {
					t.row("ID", "IDENTITY", "KIND", "ROLES", "STATE", "EXPIRES", "CREATED", "DESCRIPTION")
					for _, tok := range items {
						t.row(tok.GetId(), tok.GetIdentity(), kindName(tok.GetKind()), rolesString(tok.GetBindings()),
							tokenState(tok, now), orNever(tok.GetExpireTime() == nil, formatTime(tok.GetExpireTime())), formatTime(tok.GetCreateTime()),
							orDash(tok.GetDescription()))
					}
				})
			})
		},
	}
	cmd.Flags().StringVar(&identity, "identity", "", "only this identity's tokens")
	cmd.Flags().BoolVar(&all, "all", false, "also the revoked and expired tokens")
	return cmd
}

func tokenGetCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "get ID",
		Short: "Show a token (never its secret)",
		Args:  args("ID", 1),
		RunE: func(cmd *cobra.Command, a []string) error {
			return g.withClient(cmd, func(ctx context.Context, c *client) error {
				ctx, cancel := c.call(ctx)
				defer cancel()
				resp, err := c.iam().GetToken(ctx, &iamv1.GetTokenRequest{Id: a[0]})
				if err != nil {
					return tokenFields.rename(err, a)
				}
				tok := resp.GetToken()
				return g.printer(cmd.OutOrStdout()).print(tok, func(t *table) { tokenRows(t, tok) })
			})
		},
	}
}

func tokenRevokeCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke a token: every process refuses it from now on",
		Args:  args("ID", 1),
		RunE: func(cmd *cobra.Command, a []string) error {
			return g.withClient(cmd, func(ctx context.Context, c *client) error {
				ctx, cancel := c.call(ctx)
				defer cancel()
				resp, err := c.iam().RevokeToken(ctx, &iamv1.RevokeTokenRequest{Id: a[0]})
				if err != nil {
					return tokenFields.rename(err, a)
				}
				tok := resp.GetToken()
				return g.printer(cmd.OutOrStdout()).print(tok, func(t *table) {
					t.row(fmt.Sprintf("token %s of %s revoked at %s", tok.GetId(), tok.GetIdentity(), formatTime(tok.GetRevokeTime())))
				})
			})
		},
	}
}

func tokenRotateCommand(g *globals) *cobra.Command {
	var overlap time.Duration
	cmd := &cobra.Command{
		Use:   "rotate ID [--overlap 1h]",
		Short: "Replace a token with a new one of the same identity and roles; the old one expires after --overlap",
		Long: "Make a new token with the old one's identity and roles, and print its secret once. The old\n" +
			"token stays valid for --overlap (0s ends it at once), time to hand the new secret out.",
		Example: "  bmaas token rotate abcdefghijklm --overlap 24h",
		Args:    args("ID", 1),
		RunE: func(cmd *cobra.Command, a []string) error {
			if overlap < 0 {
				return usageErrorf("--overlap must not be negative, got %s (0s ends the old token at once)", overlap)
			}
			return g.withClient(cmd, func(ctx context.Context, c *client) error {
				ctx, cancel := c.call(ctx)
				defer cancel()
				resp, err := c.iam().RotateToken(ctx, &iamv1.RotateTokenRequest{Id: a[0], Overlap: durationpb.New(overlap)})
				if err != nil {
					return tokenFields.rename(err, a)
				}
				prev := resp.GetPrevious()
				return g.printer(cmd.OutOrStdout()).print(resp, func(t *table) {
					tokenRows(t, resp.GetToken())
					t.row("SECRET", resp.GetSecret())
					t.row("")
					t.row("The secret is shown only now: keep it (send it as --token or BMAAS_TOKEN).")
					t.row(fmt.Sprintf("The old token %s expires at %s.", orDefault(prev.GetId(), a[0]), formatTime(prev.GetExpireTime())))
				})
			})
		},
	}
	cmd.Flags().DurationVar(&overlap, "overlap", time.Hour, "how long the old token stays valid (0s: it ends now)")
	return cmd
}

// tokenRows are the table rows of one token.
func tokenRows(t *table, tok *iamv1.Token) {
	t.row("ID", tok.GetId())
	t.row("IDENTITY", tok.GetIdentity())
	t.row("KIND", kindName(tok.GetKind()))
	t.row("ROLES", rolesString(tok.GetBindings()))
	t.row("STATE", tokenState(tok, time.Now()))
	t.row("EXPIRES", orNever(tok.GetExpireTime() == nil, formatTime(tok.GetExpireTime())))
	if tok.GetRevokeTime() != nil {
		t.row("REVOKED", formatTime(tok.GetRevokeTime()))
	}
	t.row("DESCRIPTION", orDash(tok.GetDescription()))
	t.row("CREATED", formatTime(tok.GetCreateTime())+" by "+orDefault(tok.GetCreator(), "-"))
	if tok.GetRotatedFrom() != "" {
		t.row("ROTATED FROM", tok.GetRotatedFrom())
	}
}

func orNever(never bool, s string) string {
	if never {
		return "never"
	}
	return s
}

// tokenState is active, revoked or expired.
func tokenState(tok *iamv1.Token, now time.Time) string {
	switch {
	case tok.GetRevokeTime() != nil:
		return "revoked"
	case tok.GetExpireTime() != nil && !now.Before(tok.GetExpireTime().AsTime()):
		return "expired"
	}
	return "active"
}

// kindName is an identity kind as the flags say it: user,
// service-account, system.
func kindName(k iamv1.IdentityKind) string {
	if k == iamv1.IdentityKind_IDENTITY_KIND_UNSPECIFIED {
		return "-"
	}
	return strings.ReplaceAll(strings.ToLower(strings.TrimPrefix(k.String(), "IDENTITY_KIND_")), "_", "-")
}

// rolesString renders bindings as the flags take them: PROJECT=ROLE, or
// PROJECT/DEPLOYMENT for a deployment's.
func rolesString(bs []*iamv1.Binding) string {
	parts := make([]string, 0, len(bs))
	for _, b := range bs {
		if b.GetDeployment() != "" {
			parts = append(parts, b.GetProject()+"/"+b.GetDeployment())
			continue
		}
		parts = append(parts, b.GetProject()+"="+b.GetRole())
	}
	return orDash(strings.Join(parts, ","))
}

func whoamiCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "whoami",
		Short: "Show who the token (--token, BMAAS_TOKEN) is and the roles it holds",
		Args:  args("no arguments", 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.withClient(cmd, func(ctx context.Context, c *client) error {
				ctx, cancel := c.call(ctx)
				defer cancel()
				resp, err := c.iam().WhoAmI(ctx, &iamv1.WhoAmIRequest{})
				if err != nil {
					return err
				}
				return g.printer(cmd.OutOrStdout()).print(resp, func(t *table) {
					t.row("IDENTITY", resp.GetIdentity())
					if !resp.GetAuth() {
						t.row("")
						t.row("auth off: the platform asks no token, and every caller may do everything")
						return
					}
					t.row("KIND", kindName(resp.GetKind()))
					t.row("TOKEN", orDash(resp.GetTokenId()))
					t.row("ROLES", rolesString(resp.GetBindings()))
				})
			})
		},
	}
}

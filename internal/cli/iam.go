package cli

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

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
	cmd.AddCommand(projectCreateCommand(g), projectListCommand(g), projectGetCommand(g), projectUpdateCommand(g),
		projectDeleteCommand(g))
	return cmd
}

// projectFields name what the user typed for the fields of a project's errors.
var projectFields = func() fieldNames {
	m := fieldNames{"project.name": "NAME", "name": "NAME", "project.description": "--description", "project.quota": "--quota"}
	for _, k := range quotaKeys {
		m["project.quota."+k.field] = "--quota " + k.name
	}
	return m
}()

func projectCreateCommand(g *globals) *cobra.Command {
	var description string
	var quotas []string
	cmd := &cobra.Command{
		Use:   "create NAME [--description D] [--quota gpus=8,cpu=32,memory=256Gi,...]",
		Short: "Create a project",
		Long:  "Create a project, with the quota --quota gives (see bmaas project update --help for its keys).",
		Example: "  bmaas project create vision --description 'image models'\n" +
			"  bmaas project create nlp --quota gpus=8,cpu=32,memory=256Gi,jobs=10",
		Args: args("NAME", 1),
		RunE: func(cmd *cobra.Command, a []string) error {
			quota, _, err := parseQuota(quotas)
			if err != nil {
				return err
			}
			return g.withClient(cmd, func(ctx context.Context, c *client) error {
				ctx, cancel := c.call(ctx)
				defer cancel()
				resp, err := c.iam().CreateProject(ctx, &iamv1.CreateProjectRequest{
					Project: &iamv1.Project{Name: a[0], Description: description, Quota: quota}})
				if err != nil {
					return projectFields.rename(err, a)
				}
				return printProject(g, cmd, resp.GetProject())
			})
		},
	}
	projectFlags(cmd, &description, &quotas)
	return cmd
}

// projectFlags are the flags of project create and update.
func projectFlags(cmd *cobra.Command, description *string, quotas *[]string) {
	cmd.Flags().StringVar(description, "description", "", "what the project is for")
	cmd.Flags().StringArrayVar(quotas, "quota", nil, "quota KEY=VALUE[,KEY=VALUE...] (repeatable): "+strings.Join(quotaKeyNames(), ", "))
}

func projectUpdateCommand(g *globals) *cobra.Command {
	var description string
	var quotas []string
	cmd := &cobra.Command{
		Use:   "update NAME [--description D] [--quota KEY=VALUE,...]",
		Short: "Change a project's description or quota (only the quota keys named change)",
		Long: "Change a project's description, or the quota keys --quota names (the others keep their values).\n" +
			"The quota is what the project is guaranteed; it may borrow idle capacity beyond it, which is\n" +
			"reclaimed when a project within its quota needs it. Keys (0: no guarantee, or no limit):\n" +
			"  gpus=8                      GPUs\n" +
			"  gpu-memory=640Gi            GPU memory (bytes: 512Mi, 80Gi, 1Ti, 2G)\n" +
			"  cpu=32                      CPU: cores (32, 0.5) or millicores (500m)\n" +
			"  memory=256Gi                memory (bytes)\n" +
			"  jobs=10                     jobs running at once (never borrowed)\n" +
			"  deployments=5               deployments the project may hold\n" +
			"  replicas=20                 serving replicas\n" +
			"  storage=1Ti                 storage (bytes)\n" +
			"  llm-tokens-per-minute=100000  language-model tokens a minute",
		Example: "  bmaas project update vision --quota gpus=8,cpu=32,memory=256Gi\n" +
			"  bmaas project update vision --quota jobs=10 --quota storage=1Ti --description 'image models'",
		Args: args("NAME", 1),
		RunE: func(cmd *cobra.Command, a []string) error {
			quota, paths, err := parseQuota(quotas)
			if err != nil {
				return err
			}
			if cmd.Flags().Changed("description") {
				paths = append([]string{"description"}, paths...)
			}
			if len(paths) == 0 {
				return usageErrorf("nothing to update: give --description or --quota KEY=VALUE")
			}
			return g.withClient(cmd, func(ctx context.Context, c *client) error {
				ctx, cancel := c.call(ctx)
				defer cancel()
				resp, err := c.iam().UpdateProject(ctx, &iamv1.UpdateProjectRequest{
					Project:    &iamv1.Project{Name: a[0], Description: description, Quota: quota},
					UpdateMask: &fieldmaskpb.FieldMask{Paths: paths}})
				if err != nil {
					return projectFields.rename(err, a)
				}
				return printProject(g, cmd, resp.GetProject())
			})
		},
	}
	projectFlags(cmd, &description, &quotas)
	return cmd
}

// quotaKey is one key of --quota: its field of Quota, and how its value
// is read and written.
type quotaKey struct {
	name, field string
	kind        quotaKind
}

type quotaKind int

const (
	quotaCount   quotaKind = iota // a number of things (int64)
	quotaCount32                  // a number of things (int32)
	quotaBytes                    // bytes with an optional unit
	quotaCPU                      // cores or millicores, stored in millicores
)

// quotaKeys are the keys of --quota, in the order they are shown.
var quotaKeys = []quotaKey{
	{"gpus", "gpus", quotaCount}, {"gpu-memory", "gpu_memory_bytes", quotaBytes},
	{"cpu", "cpu_millis", quotaCPU}, {"memory", "memory_bytes", quotaBytes},
	{"jobs", "jobs", quotaCount32}, {"deployments", "deployments", quotaCount32},
	{"replicas", "replicas", quotaCount32}, {"storage", "storage_bytes", quotaBytes},
	{"llm-tokens-per-minute", "llm_tokens_per_minute", quotaCount},
}

func quotaKeyNames() []string {
	names := make([]string, len(quotaKeys))
	for i, k := range quotaKeys {
		names[i] = k.name
	}
	return names
}

// parseQuota reads --quota values (each KEY=VALUE, or several joined by
// commas) into a Quota and the update mask paths of the keys named, in the
// order typed. A key given twice, an unknown key or a bad value is refused.
func parseQuota(values []string) (*iamv1.Quota, []string, error) {
	if len(values) == 0 {
		return nil, nil, nil
	}
	q := &iamv1.Quota{}
	var paths []string
	seen := map[string]bool{}
	for _, v := range values {
		for item := range strings.SplitSeq(v, ",") {
			key, val, ok := strings.Cut(strings.TrimSpace(item), "=")
			key, val = strings.TrimSpace(key), strings.TrimSpace(val)
			if !ok || key == "" || val == "" {
				return nil, nil, usageErrorf("--quota %s: want KEY=VALUE (e.g. --quota gpus=8,cpu=32,memory=256Gi); keys: %s",
					item, strings.Join(quotaKeyNames(), ", "))
			}
			i := slices.IndexFunc(quotaKeys, func(k quotaKey) bool { return k.name == key })
			if i < 0 {
				return nil, nil, usageErrorf("--quota %s: unknown key %q; one of %s", item, key, strings.Join(quotaKeyNames(), ", "))
			}
			if seen[key] {
				return nil, nil, usageErrorf("--quota %s: %s is given twice", item, key)
			}
			seen[key] = true
			k := quotaKeys[i]
			n, err := k.parse(val)
			if err != nil {
				return nil, nil, usageErrorf("--quota %s: %v", item, err)
			}
			fd := q.ProtoReflect().Descriptor().Fields().ByName(protoreflect.Name(k.field))
			if fd.Kind() == protoreflect.Int32Kind {
				q.ProtoReflect().Set(fd, protoreflect.ValueOfInt32(int32(n)))
			} else {
				q.ProtoReflect().Set(fd, protoreflect.ValueOfInt64(n))
			}
			paths = append(paths, "quota."+k.field)
		}
	}
	return q, paths, nil
}

// parse reads one value of the key.
func (k quotaKey) parse(s string) (int64, error) {
	switch k.kind {
	case quotaBytes:
		m := quantityRE.FindStringSubmatch(s)
		if m == nil {
			return 0, errors.New("want bytes with an optional unit (512Mi, 256Gi, 1Ti, 2G)")
		}
		unit, ok := memoryUnits[m[2]]
		if !ok {
			return 0, fmt.Errorf("unknown unit %q: one of Ki, Mi, Gi, Ti, Pi, k, M, G, T, P", m[2])
		}
		v, _ := strconv.ParseFloat(m[1], 64)
		b := math.Round(v * unit)
		if b > math.MaxInt64/2 {
			return 0, errors.New("too large")
		}
		return int64(b), nil
	case quotaCPU:
		n, err := parseCPU(s)
		if err != nil {
			if strings.Contains(err.Error(), "finer") {
				return 0, errors.New("finer than a millicore")
			}
			return 0, errors.New("want cores (32, 0.5) or millicores (500m)")
		}
		return n, nil
	}
	limit := int64(math.MaxInt64)
	if k.kind == quotaCount32 {
		limit = math.MaxInt32
	}
	n, err := strconv.ParseInt(s, 10, 64)
	switch {
	case errors.Is(err, strconv.ErrRange) && !strings.HasPrefix(s, "-"):
		return 0, fmt.Errorf("at most %d", limit)
	case err != nil:
		return 0, errors.New("want a whole number (0: none)")
	case n < 0:
		return 0, errors.New("must not be negative")
	case n > limit:
		return 0, fmt.Errorf("at most %d", limit)
	}
	return n, nil
}

// format writes one value of the key as --quota takes it.
func (k quotaKey) format(n int64) string {
	switch k.kind {
	case quotaBytes:
		return formatBytesQuantity(n)
	case quotaCPU:
		if n%1000 == 0 {
			return strconv.FormatInt(n/1000, 10)
		}
		return strconv.FormatInt(n, 10) + "m"
	}
	return strconv.FormatInt(n, 10)
}

// formatBytesQuantity writes bytes in the unit that holds them exactly in
// the fewest digits, binary first: 256Gi, 1536Mi, 2G, 1234.
func formatBytesQuantity(n int64) string {
	best := strconv.FormatInt(n, 10)
	for _, u := range []string{"Pi", "Ti", "Gi", "Mi", "Ki", "P", "T", "G", "M", "k"} {
		size := int64(memoryUnits[u])
		if s := strconv.FormatInt(n/size, 10) + u; n != 0 && n%size == 0 && len(s) < len(best) {
			best = s
		}
	}
	return best
}

// quotaValue is the value of key in q ("-" when unset) as --quota takes it.
func quotaValue(q *iamv1.Quota, name string) string {
	i := slices.IndexFunc(quotaKeys, func(k quotaKey) bool { return k.name == name })
	k := quotaKeys[i]
	n := q.ProtoReflect().Get(q.ProtoReflect().Descriptor().Fields().ByName(protoreflect.Name(k.field))).Int()
	if n == 0 {
		return "-"
	}
	return k.format(n)
}

// quotaString is the whole quota as --quota takes it: gpus=8,cpu=32; "-"
// when none is set.
func quotaString(q *iamv1.Quota) string {
	var parts []string
	for _, k := range quotaKeys {
		if v := quotaValue(q, k.name); v != "-" {
			parts = append(parts, k.name+"="+v)
		}
	}
	return orDash(strings.Join(parts, ","))
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
					t.row("NAME", "DESCRIPTION", "GPUS", "CPU", "MEMORY", "JOBS", "CREATOR", "CREATED")
					for _, p := range items {
						q := p.GetQuota()
						t.row(p.GetName(), orDash(p.GetDescription()), quotaValue(q, "gpus"), quotaValue(q, "cpu"),
							quotaValue(q, "memory"), quotaValue(q, "jobs"), orDash(p.GetCreator()), formatTime(p.GetCreateTime()))
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
		t.row("QUOTA", quotaString(p.GetQuota()))
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

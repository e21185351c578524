//go:build integration

package tests

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	gatewayv1 "github.com/bmaas/bmaas/api/bmaas/gateway/v1"
	iamv1 "github.com/bmaas/bmaas/api/bmaas/iam/v1"
	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
	"github.com/bmaas/bmaas/api/inference"
	"github.com/bmaas/bmaas/pkg/authz"
	"github.com/bmaas/bmaas/pkg/mesh"
	"github.com/bmaas/bmaas/tests/harness"
)

// authCluster is a cluster that asks a token, with the bootstrap admin
// token read from its data directory.
func authCluster(t *testing.T, opts ...harness.Option) (*harness.Cluster, string) {
	t.Helper()
	tokenFile := filepath.Join(t.TempDir(), "mesh-token")
	require.NoError(t, os.WriteFile(tokenFile, []byte("mesh-s3cret\n"), 0o600))
	c := harness.Start(t, append(opts, harness.WithTokenFile(tokenFile))...)
	b, err := os.ReadFile(filepath.Join(c.Config.DataDir, "secrets", "admin.token"))
	require.NoError(t, err, "the bootstrap admin token is written into the data directory")
	info, err := os.Stat(filepath.Join(c.Config.DataDir, "secrets", "admin.token"))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), info.Mode().Perm())
	return c, strings.TrimSpace(string(b))
}

// dialAs is a connection to addr sending token.
func dialAs(t *testing.T, addr, token string) *grpc.ClientConn {
	t.Helper()
	opts := []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	if token != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(mesh.Bearer(token)))
	}
	conn, err := grpc.NewClient(addr, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// httpAs calls the edge with token.
func httpAs(t *testing.T, c *harness.Cluster, token, method, path, body string) (int, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, c.HTTP+path, rd)
	require.NoError(t, err)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.HTTPClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(out)
}

// mustToken makes a token with one binding.
func mustToken(t *testing.T, iam iamv1.IAMServiceClient, identity string, b ...*iamv1.Binding) string {
	t.Helper()
	resp, err := iam.CreateToken(t.Context(), &iamv1.CreateTokenRequest{Identity: identity, Bindings: b})
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(resp.GetSecret(), "bmaas_"+resp.GetToken().GetId()+"_"), resp.GetSecret())
	return resp.GetSecret()
}

// TestEveryMethodAsEveryRole: four identities (a cluster-admin, an
// editor and a viewer of the default project, an editor of another
// project) call every method of the permission table over gRPC, and each
// gets what the table and its role say: PermissionDenied where its role
// lacks the verb, NotFound where it has no role in the project at all,
// and otherwise the method's own answer (never an authorization error).
// Unauthenticated calls are refused, and the trail records who did what.
func TestEveryMethodAsEveryRole(t *testing.T) {
	t.Parallel()
	c, admin := authCluster(t)
	ctx := t.Context()
	adminIAM := iamv1.NewIAMServiceClient(dialAs(t, c.Addrs.GRPC, admin))
	_, err := adminIAM.CreateProject(ctx, &iamv1.CreateProjectRequest{Project: &iamv1.Project{Name: "vision"}})
	require.NoError(t, err)

	type identity struct {
		name  string
		token string
		role  authz.Role
		// inDefault: a role in the default project (where the resources
		// that are not named within their project are).
		inDefault bool
	}
	ids := []identity{
		{"admin", admin, authz.ClusterAdmin, true},
		{"alice", mustToken(t, adminIAM, "alice", &iamv1.Binding{Project: "default", Role: "editor"}), authz.Editor, true},
		{"bob", mustToken(t, adminIAM, "bob", &iamv1.Binding{Project: "default", Role: "viewer"}), authz.Viewer, true},
		{"carol", mustToken(t, adminIAM, "carol", &iamv1.Binding{Project: "vision", Role: "editor"}), authz.Editor, false},
	}
	methods := authz.Methods()
	require.Greater(t, len(methods), 80)
	for _, id := range ids {
		conn := dialAs(t, c.Addrs.GRPC, id.token)
		for _, m := range methods {
			perm, _ := authz.For(m, nil)
			code := callEmpty(t, conn, m)
			switch {
			case !id.inDefault && !perm.ClusterScoped() && !perm.ProjectAware() && !perm.Named():
				require.Equal(t, codes.NotFound, code, "%s calling %s (%s) has no role in the project", id.name, m, perm)
			case !id.role.Grants(perm.Verb):
				require.Equal(t, codes.PermissionDenied, code, "%s (%s) calling %s (%s)", id.name, id.role, m, perm)
			default:
				require.NotContains(t, []codes.Code{codes.PermissionDenied, codes.Unauthenticated}, code,
					"%s (%s) calling %s (%s)", id.name, id.role, m, perm)
			}
		}
	}

	// Without a token, or with a made-up one: refused.
	for _, tok := range []string{"", "bmaas_aaaaaaaaaaaaa_" + strings.Repeat("x", 43), "guess"} {
		_, err := registryv1.NewRegistryServiceClient(dialAs(t, c.Addrs.GRPC, tok)).ListModels(ctx, &registryv1.ListModelsRequest{})
		require.Equal(t, codes.Unauthenticated, status.Code(err), "%q: %v", tok, err)
	}

	// Each identity is itself.
	who, err := iamv1.NewIAMServiceClient(dialAs(t, c.Addrs.GRPC, ids[2].token)).WhoAmI(ctx, &iamv1.WhoAmIRequest{})
	require.NoError(t, err)
	require.Equal(t, "bob", who.GetIdentity())
	require.True(t, who.GetAuth())
	require.Equal(t, "viewer", who.GetBindings()[0].GetRole())

	// A real change and a refused one, in the trail with their identities.
	_, err = registryv1.NewRegistryServiceClient(dialAs(t, c.Addrs.GRPC, ids[1].token)).CreateModel(ctx,
		&registryv1.CreateModelRequest{Model: &registryv1.Model{Name: "audited", Description: "by alice"}})
	require.NoError(t, err)
	audit := iamv1.NewAuditServiceClient(dialAs(t, c.Addrs.GRPC, admin))
	var recs []*iamv1.AuditRecord
	eventually(t, 10*time.Second, "the trail has alice's CreateModel", func() bool {
		resp, err := audit.ListAuditRecords(ctx, &iamv1.ListAuditRecordsRequest{Identity: "alice", PageSize: 1000})
		require.NoError(t, err)
		recs = resp.GetRecords()
		for _, r := range recs {
			if strings.HasSuffix(r.GetMethod(), "/CreateModel") && r.GetCode() == "OK" {
				require.Equal(t, "audited", r.GetResource())
				require.Contains(t, r.GetFields(), "model.description")
				require.Equal(t, "write models", r.GetPermission())
				require.Equal(t, "default", r.GetProject())
				require.NotEmpty(t, r.GetTokenId())
				require.Contains(t, r.GetAddress(), "127.0.0.1")
				return true
			}
		}
		return false
	})
	for _, r := range recs {
		require.Equal(t, "alice", r.GetIdentity())
	}
	resp, err := audit.ListAuditRecords(ctx, &iamv1.ListAuditRecordsRequest{Identity: "bob", Denied: true, PageSize: 1000})
	require.NoError(t, err)
	denied := map[string]bool{}
	for _, r := range resp.GetRecords() {
		require.Equal(t, "PermissionDenied", r.GetCode(), "%v", r)
		denied[r.GetMethod()] = true
	}
	require.True(t, denied["/bmaas.registry.v1.RegistryService/CreateModel"], "bob's refused CreateModel is in the trail")
	// Reads are not state changes: not in the trail.
	require.False(t, denied["/bmaas.registry.v1.RegistryService/ListModels"])

	// Only the cluster-admin reads the whole trail; a viewer reads none.
	_, err = iamv1.NewAuditServiceClient(dialAs(t, c.Addrs.GRPC, ids[2].token)).ListAuditRecords(ctx,
		&iamv1.ListAuditRecordsRequest{Project: "default"})
	require.Equal(t, codes.PermissionDenied, status.Code(err), "%v", err)
}

// callEmpty calls method with an empty request and returns the code of
// its answer (OK when a stream sends a message).
func callEmpty(t *testing.T, conn *grpc.ClientConn, method string) codes.Code {
	t.Helper()
	svc, name, _ := strings.Cut(strings.TrimPrefix(method, "/"), "/")
	d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(svc))
	require.NoError(t, err, method)
	md := d.(protoreflect.ServiceDescriptor).Methods().ByName(protoreflect.Name(name))
	in, err := protoregistry.GlobalTypes.FindMessageByName(md.Input().FullName())
	require.NoError(t, err)
	out, err := protoregistry.GlobalTypes.FindMessageByName(md.Output().FullName())
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if !md.IsStreamingClient() && !md.IsStreamingServer() {
		return status.Code(conn.Invoke(ctx, method, in.New().Interface(), out.New().Interface()))
	}
	cs, err := conn.NewStream(ctx, &grpc.StreamDesc{ServerStreams: md.IsStreamingServer(), ClientStreams: md.IsStreamingClient()}, method)
	if err != nil {
		return status.Code(err)
	}
	if !md.IsStreamingClient() {
		if err := cs.SendMsg(in.New().Interface()); err != nil && !errors.Is(err, io.EOF) {
			return status.Code(err)
		}
	}
	_ = cs.CloseSend()
	err = cs.RecvMsg(out.New().Interface())
	if errors.Is(err, io.EOF) {
		return codes.OK
	}
	return status.Code(err)
}

// TestTokensLifecycle: tokens are made with checked scopes, revoked and
// rotated without a restart; a revoked token is refused at once on the
// gRPC port and the HTTP edge, rotation keeps both tokens for the overlap
// only, an expired token is refused, and bad input names its field.
func TestTokensLifecycle(t *testing.T) {
	t.Parallel()
	c, admin := authCluster(t)
	ctx := t.Context()
	adminIAM := iamv1.NewIAMServiceClient(dialAs(t, c.Addrs.GRPC, admin))

	// Bad input.
	for _, tc := range []struct {
		req   *iamv1.CreateTokenRequest
		field string
	}{
		{&iamv1.CreateTokenRequest{Identity: "dan", Bindings: []*iamv1.Binding{{Project: "nope", Role: "viewer"}}}, "bindings[0].project"},
		{&iamv1.CreateTokenRequest{Identity: "dan", Bindings: []*iamv1.Binding{{Project: "default", Role: "owner"}}}, "bindings[0].role"},
		{&iamv1.CreateTokenRequest{Identity: "dan", Bindings: []*iamv1.Binding{{Project: "default", Role: "cluster-admin"}}}, "bindings[0].project"},
		{&iamv1.CreateTokenRequest{Identity: "dan"}, "bindings"},
		{&iamv1.CreateTokenRequest{Identity: "", Bindings: []*iamv1.Binding{{Project: "default", Role: "viewer"}}}, "identity"},
		{&iamv1.CreateTokenRequest{Identity: "dan", Bindings: []*iamv1.Binding{{Project: "default", Role: "viewer"}}, Ttl: durationpb.New(-time.Second)}, "ttl"},
	} {
		_, err := adminIAM.CreateToken(ctx, tc.req)
		require.Equal(t, codes.InvalidArgument, status.Code(err), "%v", err)
		require.Contains(t, status.Convert(err).Message(), tc.field)
	}
	_, err := adminIAM.CreateProject(ctx, &iamv1.CreateProjectRequest{Project: &iamv1.Project{Name: "vision"}})
	require.NoError(t, err)
	_, err = adminIAM.CreateProject(ctx, &iamv1.CreateProjectRequest{Project: &iamv1.Project{Name: "vision"}})
	require.Equal(t, codes.AlreadyExists, status.Code(err), "%v", err)
	_, err = adminIAM.CreateProject(ctx, &iamv1.CreateProjectRequest{Project: &iamv1.Project{Name: "Vision!"}})
	require.Equal(t, codes.InvalidArgument, status.Code(err))
	require.Contains(t, status.Convert(err).Message(), "project.name")

	// An editor may not grant roles: making tokens needs a project's admin.
	editor := mustToken(t, adminIAM, "erin", &iamv1.Binding{Project: "default", Role: "editor"})
	_, err = iamv1.NewIAMServiceClient(dialAs(t, c.Addrs.GRPC, editor)).CreateToken(ctx, &iamv1.CreateTokenRequest{
		Identity: "mallory", Bindings: []*iamv1.Binding{{Project: "default", Role: "viewer"}}})
	require.Equal(t, codes.PermissionDenied, status.Code(err), "%v", err)
	// A project admin grants within its project only.
	padmin := mustToken(t, adminIAM, "paula", &iamv1.Binding{Project: "vision", Role: "admin"})
	pIAM := iamv1.NewIAMServiceClient(dialAs(t, c.Addrs.GRPC, padmin))
	_, err = pIAM.CreateToken(ctx, &iamv1.CreateTokenRequest{Identity: "vic", Bindings: []*iamv1.Binding{{Project: "vision", Role: "editor"}}})
	require.NoError(t, err)
	_, err = pIAM.CreateToken(ctx, &iamv1.CreateTokenRequest{Identity: "vic", Bindings: []*iamv1.Binding{{Project: "default", Role: "viewer"}}})
	require.Equal(t, codes.PermissionDenied, status.Code(err), "%v", err)
	// It sees its project, not the others.
	projects, err := pIAM.ListProjects(ctx, &iamv1.ListProjectsRequest{})
	require.NoError(t, err)
	require.Len(t, projects.GetProjects(), 1)
	require.Equal(t, "vision", projects.GetProjects()[0].GetName())
	_, err = pIAM.GetProject(ctx, &iamv1.GetProjectRequest{Name: "default"})
	require.Equal(t, codes.NotFound, status.Code(err))

	// Revocation: refused on the next call, over gRPC and HTTP.
	secret := mustToken(t, adminIAM, "ci", &iamv1.Binding{Project: "default", Role: "viewer"})
	id, _, _ := strings.Cut(strings.TrimPrefix(secret, "bmaas_"), "_")
	models := registryv1.NewRegistryServiceClient(dialAs(t, c.Addrs.GRPC, secret))
	_, err = models.ListModels(ctx, &registryv1.ListModelsRequest{})
	require.NoError(t, err)
	code, body := httpAs(t, c, secret, "GET", "/v1/models", "")
	require.Equal(t, http.StatusOK, code, body)
	list, err := adminIAM.ListTokens(ctx, &iamv1.ListTokensRequest{Identity: "ci"})
	require.NoError(t, err)
	require.Len(t, list.GetTokens(), 1)
	require.Equal(t, id, list.GetTokens()[0].GetId())
	_, err = adminIAM.RevokeToken(ctx, &iamv1.RevokeTokenRequest{Id: id})
	require.NoError(t, err)
	revoked := time.Now()
	eventually(t, 10*time.Second, "the revoked token is refused", func() bool {
		_, err := models.ListModels(ctx, &registryv1.ListModelsRequest{})
		return status.Code(err) == codes.Unauthenticated
	})
	t.Logf("revoked token refused after %s", time.Since(revoked))
	code, _ = httpAs(t, c, secret, "GET", "/v1/models", "")
	require.Equal(t, http.StatusUnauthorized, code)
	list, err = adminIAM.ListTokens(ctx, &iamv1.ListTokensRequest{Identity: "ci"})
	require.NoError(t, err)
	require.Empty(t, list.GetTokens(), "a revoked token is listed only with show_inactive")
	list, err = adminIAM.ListTokens(ctx, &iamv1.ListTokensRequest{Identity: "ci", ShowInactive: true})
	require.NoError(t, err)
	require.NotNil(t, list.GetTokens()[0].GetRevokeTime())

	// Rotation: both valid during the overlap, then only the new one.
	old := mustToken(t, adminIAM, "pipeline", &iamv1.Binding{Project: "default", Role: "viewer"})
	oldID, _, _ := strings.Cut(strings.TrimPrefix(old, "bmaas_"), "_")
	rot, err := iamv1.NewIAMServiceClient(dialAs(t, c.Addrs.GRPC, old)).RotateToken(ctx,
		&iamv1.RotateTokenRequest{Id: oldID, Overlap: durationpb.New(2 * time.Second)})
	require.NoError(t, err, "a token rotates itself")
	require.Equal(t, oldID, rot.GetToken().GetRotatedFrom())
	require.NotNil(t, rot.GetPrevious().GetExpireTime())
	for _, tok := range []string{old, rot.GetSecret()} {
		_, err := registryv1.NewRegistryServiceClient(dialAs(t, c.Addrs.GRPC, tok)).ListModels(ctx, &registryv1.ListModelsRequest{})
		require.NoError(t, err, "both tokens work during the overlap")
	}
	oldModels := registryv1.NewRegistryServiceClient(dialAs(t, c.Addrs.GRPC, old))
	eventually(t, 15*time.Second, "the old token ends with the overlap", func() bool {
		_, err := oldModels.ListModels(ctx, &registryv1.ListModelsRequest{})
		return status.Code(err) == codes.Unauthenticated
	})
	require.False(t, time.Now().Before(rot.GetPrevious().GetExpireTime().AsTime()), "not before the overlap ends")
	_, err = registryv1.NewRegistryServiceClient(dialAs(t, c.Addrs.GRPC, rot.GetSecret())).ListModels(ctx, &registryv1.ListModelsRequest{})
	require.NoError(t, err, "the new token stays")

	// Expiry.
	short, err := adminIAM.CreateToken(ctx, &iamv1.CreateTokenRequest{Identity: "temp", Ttl: durationpb.New(time.Second),
		Bindings: []*iamv1.Binding{{Project: "default", Role: "viewer"}}})
	require.NoError(t, err)
	shortModels := registryv1.NewRegistryServiceClient(dialAs(t, c.Addrs.GRPC, short.GetSecret()))
	eventually(t, 15*time.Second, "the expired token is refused", func() bool {
		_, err := shortModels.ListModels(ctx, &registryv1.ListModelsRequest{})
		return status.Code(err) == codes.Unauthenticated
	})
	require.False(t, time.Now().Before(short.GetToken().GetExpireTime().AsTime()))

	// The same API over REST, through the edge.
	code, body = httpAs(t, c, admin, "GET", "/v1/whoami", "")
	require.Equal(t, http.StatusOK, code, body)
	require.Contains(t, body, `"identity":"admin"`)
	code, body = httpAs(t, c, admin, "POST", "/v1/projects", `{"name":"nlp","quota":{"gpus":"4"}}`)
	require.Equal(t, http.StatusOK, code, body)
	code, body = httpAs(t, c, admin, "PATCH", "/v1/projects/nlp?update_mask=quota.gpus", `{"quota":{"gpus":"8"}}`)
	require.Equal(t, http.StatusOK, code, body)
	require.Contains(t, body, `"gpus":"8"`)
	code, body = httpAs(t, c, editor, "POST", "/v1/projects", `{"name":"mine"}`)
	require.Equal(t, http.StatusForbidden, code, body)
	code, body = httpAs(t, c, admin, "GET", "/v1/audit-records?identity=erin", "")
	require.Equal(t, http.StatusOK, code, body)
	code, body = httpAs(t, c, "", "GET", "/v1/auth-config", "")
	require.Equal(t, http.StatusOK, code, "signing in needs no token: %s", body)

	// The default project's storage quota: an upload that would go over
	// it is refused, saying so, and stores nothing.
	csv, err := os.ReadFile(filepath.Join("..", "examples", "datasets", "iris.csv"))
	require.NoError(t, err)
	_, err = adminIAM.UpdateProject(ctx, &iamv1.UpdateProjectRequest{Project: &iamv1.Project{Name: "default",
		Quota: &iamv1.Quota{StorageBytes: int64(len(csv)) + 100}}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"quota.storage_bytes"}}})
	require.NoError(t, err)
	uploadDatasetFile(t, c.Registry, "fits", "iris.csv")
	err = uploadRaw(t, c.Registry, "over", csv)
	require.Equal(t, codes.ResourceExhausted, status.Code(err), "%v", err)
	require.Contains(t, status.Convert(err).Message(), "over quota: project default stores")
	_, err = c.Registry.GetDataset(ctx, &registryv1.GetDatasetRequest{Name: "over"})
	require.Equal(t, codes.NotFound, status.Code(err), "nothing stored")

	// The bootstrap token is found again, not made again, on a restart
	// (its file is kept): the admin still works (same cluster here).
	who, err := adminIAM.WhoAmI(ctx, &iamv1.WhoAmIRequest{})
	require.NoError(t, err)
	require.Equal(t, "admin", who.GetIdentity())
	require.Equal(t, "cluster-admin", who.GetBindings()[0].GetRole())
	_ = timestamppb.Now
}

// TestDeploymentToken: a token scoped to one deployment calls it (KServe
// v2 over HTTP and gRPC) and nothing else, while a viewer may read but not
// call it, and an identity of another project does not see it.
func TestDeploymentToken(t *testing.T) {
	t.Parallel()
	c, admin := authCluster(t, withFastGateway())
	ctx := t.Context()
	adminIAM := iamv1.NewIAMServiceClient(dialAs(t, c.Addrs.GRPC, admin))
	_, err := adminIAM.CreateProject(ctx, &iamv1.CreateProjectRequest{Project: &iamv1.Project{Name: "vision"}})
	require.NoError(t, err)
	servedIris(t, c)
	caller := mustToken(t, adminIAM, "app", &iamv1.Binding{Project: "default", Role: "viewer", Deployment: "iris"})
	viewer := mustToken(t, adminIAM, "bob", &iamv1.Binding{Project: "default", Role: "viewer"})
	other := mustToken(t, adminIAM, "carol", &iamv1.Binding{Project: "vision", Role: "editor"})
	infer := `{"inputs":[{"name":"input","datatype":"FP64","shape":[1,4],"data":[5.1,3.5,1.4,0.2]}]}`
	for _, tc := range []struct {
		token, method, path, body string
		want                      int
	}{
		{caller, "POST", "/v2/models/iris/infer", infer, http.StatusOK},
		{caller, "GET", "/v2/models/iris", "", http.StatusOK},
		{caller, "POST", "/v2/models/other/infer", infer, http.StatusNotFound},
		{caller, "GET", "/v1/models", "", http.StatusNotFound},
		{viewer, "GET", "/v2/models/iris", "", http.StatusOK},
		{viewer, "POST", "/v2/models/iris/infer", infer, http.StatusForbidden},
		{other, "POST", "/v2/models/iris/infer", infer, http.StatusNotFound},
		// Another project's editor lists its own project's models: none.
		{other, "GET", "/v1/models", "", http.StatusOK},
	} {
		code, body := httpAs(t, c, tc.token, tc.method, tc.path, tc.body)
		require.Equal(t, tc.want, code, "%s %s: %s", tc.method, tc.path, body)
		if tc.token == other {
			require.NotContains(t, body, `"iris"`, "%s %s", tc.method, tc.path)
		}
	}
	// Over gRPC too (the gateway's ModelInfer reads its request undecoded).
	row := &inference.ModelInferRequest_InferInputTensor{Name: "input", Datatype: "FP64", Shape: []int64{1, 4},
		Contents: &inference.InferTensorContents{Fp64Contents: []float64{5.1, 3.5, 1.4, 0.2}}}
	for name, want := range map[string]codes.Code{"iris": codes.OK, "other": codes.NotFound} {
		_, err := inference.NewGRPCInferenceServiceClient(dialAs(t, c.Addrs.GRPC, caller)).ModelInfer(ctx,
			&inference.ModelInferRequest{ModelName: name, Inputs: []*inference.ModelInferRequest_InferInputTensor{row}})
		require.Equal(t, want, status.Code(err), "%s: %v", name, err)
	}
	req := &registryv1.ListModelsRequest{}
	_, err = registryv1.NewRegistryServiceClient(dialAs(t, c.Addrs.GRPC, caller)).ListModels(ctx, req)
	require.Equal(t, codes.NotFound, status.Code(err), "%v", err)

	// The default project's quota of deployments and replicas holds.
	_, err = adminIAM.UpdateProject(ctx, &iamv1.UpdateProjectRequest{Project: &iamv1.Project{Name: "default",
		Quota: &iamv1.Quota{Deployments: 1, Replicas: 2}}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"quota.deployments", "quota.replicas"}}})
	require.NoError(t, err)
	deps := gatewayv1.NewDeploymentServiceClient(dialAs(t, c.Addrs.GRPC, admin))
	_, err = deps.CreateDeployment(ctx, &gatewayv1.CreateDeploymentRequest{Deployment: &gatewayv1.Deployment{Name: "iris2", Model: "iris@1"}})
	require.Equal(t, codes.ResourceExhausted, status.Code(err), "%v", err)
	require.Contains(t, status.Convert(err).Message(), "over quota: project default holds 1 of 1 deployments")
	_, err = deps.UpdateDeployment(ctx, &gatewayv1.UpdateDeploymentRequest{Deployment: &gatewayv1.Deployment{Name: "iris", MaxReplicas: 3},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"max_replicas"}}})
	require.Equal(t, codes.ResourceExhausted, status.Code(err), "%v", err)
	require.Contains(t, status.Convert(err).Message(), "of 2 replicas")
	_, err = deps.UpdateDeployment(ctx, &gatewayv1.UpdateDeploymentRequest{Deployment: &gatewayv1.Deployment{Name: "iris", MaxReplicas: 2},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"max_replicas"}}})
	require.NoError(t, err, "within the quota")
	_ = proto.Clone
}

// TestRevocationEveryProcess: on a cluster of separate processes sharing
// the mesh's token, a token works on every process (also for a call one
// process forwards to another, which runs as the caller, not as the
// mesh), and once revoked is refused by every process; the trail names
// the caller of a forwarded call.
func TestRevocationEveryProcess(t *testing.T) {
	t.Parallel()
	etcd := harness.ExternalEtcd(t)
	natsSrv := harness.ExternalNATS(t)
	tokenFile := filepath.Join(t.TempDir(), "mesh-token")
	require.NoError(t, os.WriteFile(tokenFile, []byte("mesh-s3cret\n"), 0o600))
	common := []string{"serve", "--etcd-endpoints", etcd.URL, "--nats-url", natsSrv.URL, "--auth.token-file", tokenFile}
	regDir := t.TempDir()
	registry := harness.StartProcess(t, append(common, "--target=registry", "--data-dir", regDir)...)
	scheduler := harness.StartProcess(t, append(common, "--target=scheduler", "--data-dir", t.TempDir())...)
	gateway := harness.StartProcess(t, append(common, "--target=gateway", "--data-dir", t.TempDir())...)
	b, err := os.ReadFile(filepath.Join(regDir, "secrets", "admin.token"))
	require.NoError(t, err)
	admin := strings.TrimSpace(string(b))
	ctx := t.Context()
	adminIAM := iamv1.NewIAMServiceClient(dialAs(t, registry.GRPC, admin))
	viewer := mustToken(t, adminIAM, "bob", &iamv1.Binding{Project: "default", Role: "viewer"})
	id, _, _ := strings.Cut(strings.TrimPrefix(viewer, "bmaas_"), "_")

	procs := map[string]*harness.Process{"registry": registry, "scheduler": scheduler, "gateway": gateway}
	clients := map[string]registryv1.RegistryServiceClient{}
	for name, p := range procs {
		clients[name] = registryv1.NewRegistryServiceClient(dialAs(t, p.GRPC, viewer))
		eventually(t, 10*time.Second, name+" knows the token", func() bool {
			_, err := clients[name].ListModels(ctx, &registryv1.ListModelsRequest{})
			return err == nil
		})
	}
	// Forwarded to the registry, the call runs as bob: a viewer may not
	// create a model through any process.
	_, err = clients["scheduler"].CreateModel(ctx, &registryv1.CreateModelRequest{Model: &registryv1.Model{Name: "nope"}})
	require.Equal(t, codes.PermissionDenied, status.Code(err), "%v", err)
	require.Contains(t, status.Convert(err).Message(), "bob may not write models")
	audit := iamv1.NewAuditServiceClient(dialAs(t, registry.GRPC, admin))
	eventually(t, 10*time.Second, "the forwarded refusal is in the trail as bob's", func() bool {
		resp, err := audit.ListAuditRecords(ctx, &iamv1.ListAuditRecordsRequest{Identity: "bob", Denied: true})
		require.NoError(t, err)
		for _, r := range resp.GetRecords() {
			if strings.HasSuffix(r.GetMethod(), "/CreateModel") {
				require.Equal(t, id, r.GetTokenId())
				require.Contains(t, r.GetAddress(), "127.0.0.1")
				return true
			}
		}
		return false
	})

	_, err = adminIAM.RevokeToken(ctx, &iamv1.RevokeTokenRequest{Id: id})
	require.NoError(t, err)
	revoked := time.Now()
	for name := range procs {
		eventually(t, 10*time.Second, name+" refuses the revoked token", func() bool {
			_, err := clients[name].ListModels(ctx, &registryv1.ListModelsRequest{})
			return status.Code(err) == codes.Unauthenticated
		})
		t.Logf("%s refuses the revoked token %s after the revocation", name, time.Since(revoked))
	}
}

// uploadRaw uploads data as a dataset and returns the upload's error.
func uploadRaw(t *testing.T, c registryv1.RegistryServiceClient, name string, data []byte) error {
	t.Helper()
	st, err := c.UploadDataset(t.Context())
	require.NoError(t, err)
	for _, req := range []*registryv1.UploadDatasetRequest{
		{Payload: &registryv1.UploadDatasetRequest_Header{Header: &registryv1.UploadDatasetHeader{Name: name, Filename: name + ".csv",
			Sha256: fmt.Sprintf("%x", sha256.Sum256(data))}}},
		{Payload: &registryv1.UploadDatasetRequest_Chunk{Chunk: data}},
	} {
		if err := st.Send(req); err != nil {
			break
		}
	}
	_, err = st.CloseAndRecv()
	return err
}

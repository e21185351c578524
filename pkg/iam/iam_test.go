package iam

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	iamv1 "github.com/bmaas/bmaas/api/bmaas/iam/v1"
	"github.com/bmaas/bmaas/pkg/authz"
)

func TestSecretsParseAndHash(t *testing.T) {
	id, secret, sum := NewSecret()
	require.True(t, strings.HasPrefix(secret, "bmaas_"+id+"_"))
	got, ok := ParseSecret(secret)
	require.True(t, ok)
	require.Equal(t, id, got)
	require.True(t, secretMatches(secret, sum))
	require.False(t, secretMatches(secret+"x", sum))
	require.Equal(t, sum, Sum(secret))
	for _, bad := range []string{"", "bmaas_", "bmaas_abc_def", "other_" + id + "_" + strings.Repeat("a", 43), "bmaas_" + id + strings.Repeat("a", 44)} {
		_, ok := ParseSecret(bad)
		require.False(t, ok, bad)
	}
	id2, _, _ := NewSecret()
	require.NotEqual(t, id, id2)
	_, ok = bearer("bearer  tok")
	require.True(t, ok, "the scheme is case-insensitive")
	_, ok = bearer("Basic tok")
	require.False(t, ok)
}

func principal(t *testing.T, bs ...*iamv1.Binding) *Principal {
	t.Helper()
	p, err := NewPrincipal(&iamv1.Token{Identity: "x", Bindings: bs})
	require.NoError(t, err)
	return p
}

func TestDecide(t *testing.T) {
	read, write, exec, admin, invoke := authz.Permission{Resource: "jobs", Verb: authz.Read}, authz.Permission{Resource: "jobs", Verb: authz.Write},
		authz.Permission{Resource: "jobs", Verb: authz.Exec}, authz.Permission{Resource: "runtimes", Verb: authz.Admin},
		authz.Permission{Resource: "inference", Verb: authz.Invoke}
	viewer := principal(t, &iamv1.Binding{Project: "vision", Role: "viewer"})
	editor := principal(t, &iamv1.Binding{Project: "vision", Role: "editor"})
	padmin := principal(t, &iamv1.Binding{Project: "vision", Role: "admin"})
	cadmin := principal(t, &iamv1.Binding{Project: "*", Role: "cluster-admin"})
	app := principal(t, &iamv1.Binding{Project: "default", Role: "viewer", Deployment: "iris"})
	for _, tc := range []struct {
		p          *Principal
		perm       authz.Permission
		project    string
		deployment string
		want       Decision
	}{
		{viewer, read, "vision", "", Allow}, {viewer, write, "vision", "", Deny}, {viewer, read, "nlp", "", Hide},
		{editor, write, "vision", "", Allow}, {editor, exec, "vision", "", Deny}, {editor, write, "nlp", "", Hide},
		{padmin, exec, "vision", "", Allow}, {padmin, admin, "", "", Deny},
		{cadmin, admin, "", "", Allow}, {cadmin, exec, "nlp", "", Allow},
		{nil, admin, "", "", Allow},
		{app, invoke, "default", "iris", Allow}, {app, invoke, "default", "other", Hide},
		{app, read, "default", "", Hide}, {app, invoke, "vision", "iris", Hide},
		{System, admin, "", "", Allow},
	} {
		require.Equal(t, tc.want, tc.p.Decide(tc.perm, tc.project, tc.deployment), "%s %s in %q on %q", tc.p.Name(), tc.perm, tc.project, tc.deployment)
	}
	require.Equal(t, "vision", editor.DefaultProject())
	require.Equal(t, DefaultProject, cadmin.DefaultProject())
	require.Equal(t, DefaultProject, principal(t, &iamv1.Binding{Project: "a", Role: "viewer"}, &iamv1.Binding{Project: "b", Role: "viewer"}).DefaultProject())
	require.Equal(t, authz.ProjectAdmin, padmin.RoleIn("vision"))
	require.Equal(t, authz.Role(0), padmin.RoleIn("nlp"))
	require.True(t, cadmin.ClusterAdmin())
	require.False(t, padmin.ClusterAdmin())
}

func TestBadBindings(t *testing.T) {
	for _, b := range []*iamv1.Binding{
		{Project: "vision", Role: "owner"},
		{Project: "vision", Role: "cluster-admin"},
		{Project: "*", Role: "editor"},
		{Project: "", Role: "viewer"},
	} {
		_, err := NewPrincipal(&iamv1.Token{Bindings: []*iamv1.Binding{b}})
		require.Error(t, err, "%v", b)
		require.Contains(t, err.Error(), "bindings[0]")
	}
}

// A token is refused once revoked, from its expiry, or with another
// secret; the mesh token is System; with no mesh token everyone is
// anonymous.
func TestAuthenticateWithoutEtcd(t *testing.T) {
	off := NewAuthority("", nil, nil, nil)
	p, err := off.Authenticate("")
	require.NoError(t, err)
	require.Nil(t, p)
	on := NewAuthority("mesh", nil, nil, nil)
	p, err = on.Authenticate("Bearer mesh")
	require.NoError(t, err)
	require.Same(t, System, p)
	_, err = on.Authenticate("Bearer nope")
	require.ErrorIs(t, err, ErrUnauthenticated)
	_, err = on.Authenticate("")
	require.ErrorIs(t, err, ErrUnauthenticated)
}

func TestPrincipalExpiry(t *testing.T) {
	end := time.Now().Add(time.Hour)
	p, err := NewPrincipal(&iamv1.Token{Identity: "ci", ExpireTime: timestamppb.New(end),
		Bindings: []*iamv1.Binding{{Project: "default", Role: "viewer"}}})
	require.NoError(t, err)
	require.True(t, p.Expires.Equal(end.Truncate(time.Nanosecond)) || p.Expires.Sub(end).Abs() < time.Microsecond)
}

func TestResourceAndFieldsOfARequest(t *testing.T) {
	req := &iamv1.UpdateProjectRequest{Project: &iamv1.Project{Name: "vision", Quota: &iamv1.Quota{Gpus: 8}}}
	require.Equal(t, "vision", resourceOf(req))
	require.ElementsMatch(t, []string{"project.name", "project.quota"}, fieldsOf(req))
	require.Equal(t, "t1", resourceOf(&iamv1.RevokeTokenRequest{Id: "t1"}))
	req.UpdateMask = &fieldmaskpb.FieldMask{Paths: []string{"quota.gpus"}}
	require.Equal(t, []string{"quota.gpus"}, fieldsOf(req), "the mask says what changes")
}

// A token scoped to one deployment calls it through routes that name it
// in their body (the OpenAI API's), checked by their handler; the edge
// leaves those routes to it.
func TestDeploymentTokenOnBodyRoutes(t *testing.T) {
	app := principal(t, &iamv1.Binding{Project: "default", Role: "viewer", Deployment: "llm"})
	ctx := WithCaller(context.Background(), &Caller{Principal: app})
	require.True(t, MayInvoke(ctx, "llm"))
	require.False(t, MayInvoke(ctx, "other"))
	require.True(t, app.scopedToDeployments())
	require.True(t, bodyNamesDeployment("POST /openai/v1/chat/completions"))
	require.False(t, bodyNamesDeployment("POST /v2/models/{name}/infer"))
	viewer := principal(t, &iamv1.Binding{Project: "default", Role: "viewer"})
	require.False(t, viewer.scopedToDeployments())
	require.False(t, MayInvoke(WithCaller(context.Background(), &Caller{Principal: viewer}), "llm"), "a viewer may not call")
	require.True(t, MayInvoke(context.Background(), "llm"), "anonymous, when the platform asks no token")
	require.Equal(t, "llm", deploymentOfPath("/v2/models/llm/infer"))
	require.Equal(t, "iris", deploymentOfPath("/v1/models/iris:predict"))
}

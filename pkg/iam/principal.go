package iam

import (
	"fmt"
	"time"

	iamv1 "github.com/bmaas/bmaas/api/bmaas/iam/v1"
	"github.com/bmaas/bmaas/pkg/authz"
)

// AllProjects is a binding's project for the cluster-admin role.
const AllProjects = "*"

// Principal is who a call runs as. A nil *Principal is the anonymous
// caller of a platform that asks no token: it may do everything.
type Principal struct {
	Identity string
	Kind     iamv1.IdentityKind
	TokenID  string
	// Expires is the token's end (zero: never).
	Expires  time.Time
	bindings []grant
	src      []*iamv1.Binding
}

// grant is a binding, parsed.
type grant struct {
	project    string
	role       authz.Role
	deployment string
}

// System is the platform's own processes (the mesh token).
var System = &Principal{Identity: "system", Kind: iamv1.IdentityKind_IDENTITY_KIND_SYSTEM,
	bindings: []grant{{project: AllProjects, role: authz.ClusterAdmin}},
	src:      []*iamv1.Binding{{Project: AllProjects, Role: authz.ClusterAdmin.String()}}}

// NewPrincipal parses a token's bindings; an unknown role, or
// cluster-admin on anything but "*", is an error naming the binding.
func NewPrincipal(t *iamv1.Token) (*Principal, error) {
	p := &Principal{Identity: t.GetIdentity(), Kind: t.GetKind(), TokenID: t.GetId(), src: t.GetBindings()}
	if e := t.GetExpireTime(); e != nil {
		p.Expires = e.AsTime()
	}
	for i, b := range t.GetBindings() {
		g, err := parseBinding(b)
		if err != nil {
			return nil, fmt.Errorf("bindings[%d]: %w", i, err)
		}
		p.bindings = append(p.bindings, g)
	}
	return p, nil
}

func parseBinding(b *iamv1.Binding) (grant, error) {
	r, err := authz.ParseRole(b.GetRole())
	if err != nil && !(b.GetDeployment() != "" && b.GetRole() == "") {
		return grant{}, err
	}
	if (r == authz.ClusterAdmin) != (b.GetProject() == AllProjects) {
		return grant{}, fmt.Errorf("cluster-admin is granted on project %q only, and only it is", AllProjects)
	}
	if b.GetProject() == "" {
		return grant{}, fmt.Errorf("project: required")
	}
	return grant{project: b.GetProject(), role: r, deployment: b.GetDeployment()}, nil
}

// Bindings are the principal's roles as its token says them.
func (p *Principal) Bindings() []*iamv1.Binding { return p.src }

// Name is the principal's identity, "anonymous" for nil.
func (p *Principal) Name() string {
	if p == nil {
		return "anonymous"
	}
	return p.Identity
}

// Decision is what a principal may do with a call.
type Decision int

const (
	// Allow lets the call run.
	Allow Decision = iota
	// Deny refuses it: the caller may see the resource's project but
	// not do this (PermissionDenied).
	Deny
	// Hide refuses it as if the resource did not exist: the caller has
	// no role on its project (NotFound).
	Hide
)

// Decide says whether p may do perm in project ("" for the cluster's
// own resources: nodes, runtimes, metrics) on deployment (for
// inference; "" when the call names none).
func (p *Principal) Decide(perm authz.Permission, project, deployment string) Decision {
	if p == nil {
		return Allow
	}
	sees := false
	for _, g := range p.bindings {
		switch {
		case g.role == authz.ClusterAdmin:
			return Allow
		case g.deployment != "":
			if project != "" && g.project != project {
				continue
			}
			if deployment == g.deployment && invokesOnly(perm) {
				return Allow
			}
			if deployment == g.deployment {
				sees = true
			}
		case project == "" || g.project == project:
			if g.role.Grants(perm.Verb) {
				return Allow
			}
			sees = true
		}
	}
	if sees || project == "" {
		return Deny
	}
	return Hide
}

// invokesOnly says whether perm is within what a deployment's token
// grants: calling the deployment, reading its metadata, giving feedback.
func invokesOnly(perm authz.Permission) bool {
	switch perm.Resource {
	case "inference":
		return perm.Verb == authz.Read || perm.Verb == authz.Invoke
	case "deployments":
		return perm.Verb == authz.Invoke
	}
	return false
}

// RoleIn is p's role in project (0 when none), cluster-admin counting in
// every project; a deployment's binding gives no role.
func (p *Principal) RoleIn(project string) authz.Role {
	if p == nil {
		return authz.ClusterAdmin
	}
	best := authz.Role(0)
	for _, g := range p.bindings {
		if g.deployment == "" && (g.project == project || g.role == authz.ClusterAdmin) {
			best = max(best, g.role)
		}
	}
	return best
}

// DefaultProject is the project p's calls go to when they name none:
// the one project its roles are on, else "default".
func (p *Principal) DefaultProject() string {
	if p == nil {
		return DefaultProject
	}
	project := ""
	for _, g := range p.bindings {
		if g.project == AllProjects {
			continue
		}
		if project != "" && g.project != project {
			return DefaultProject
		}
		project = g.project
	}
	if project == "" {
		return DefaultProject
	}
	return project
}

// scopedToDeployments says whether some of p's bindings are to
// deployments alone.
func (p *Principal) scopedToDeployments() bool {
	if p == nil {
		return false
	}
	for _, g := range p.bindings {
		if g.deployment != "" {
			return true
		}
	}
	return false
}

// ClusterAdmin says whether p may do everything.
func (p *Principal) ClusterAdmin() bool { return p.RoleIn(AllProjects) == authz.ClusterAdmin }

// Package authz is the platform's one permission table: what every gRPC
// method and every hand-written HTTP route needs (a verb on a kind of
// resource), and which roles grant it. A method without an entry is
// refused (fail closed), and a test fails when a method of the API has
// none.
//
// Roles, from least to most: viewer (read), editor (read, write, invoke
// models), admin (also exec: run arbitrary commands, as process jobs,
// process experiments and a project's serving runtimes do, and change
// policies), and cluster-admin (also the cluster's own resources: nodes'
// agents, the default project's runtimes, which serve every project,
// model repository control). The static bearer token of
// --auth.token-file (and the mesh's own calls) is a cluster-admin.
package authz

import (
	"fmt"
	"strings"
)

// Verb is what a call does to its resource.
type Verb int

const (
	// Read lists, gets, watches, downloads.
	Read Verb = iota + 1
	// Write creates, updates, deletes.
	Write
	// Invoke runs inference and gives feedback.
	Invoke
	// Exec runs arbitrary commands on the nodes.
	Exec
	// Admin changes the cluster itself.
	Admin
)

func (v Verb) String() string {
	return map[Verb]string{Read: "read", Write: "write", Invoke: "invoke", Exec: "exec", Admin: "admin"}[v]
}

// Role is what an identity may do.
type Role int

const (
	Viewer Role = iota + 1
	Editor
	ProjectAdmin
	ClusterAdmin
)

func (r Role) String() string {
	return map[Role]string{Viewer: "viewer", Editor: "editor", ProjectAdmin: "admin", ClusterAdmin: "cluster-admin"}[r]
}

// ParseRole reads a role's name.
func ParseRole(s string) (Role, error) {
	for r := Viewer; r <= ClusterAdmin; r++ {
		if r.String() == s {
			return r, nil
		}
	}
	return 0, fmt.Errorf("unknown role %q; one of viewer, editor, admin, cluster-admin", s)
}

// Grants says whether r may do v.
func (r Role) Grants(v Verb) bool {
	switch v {
	case Read:
		return r >= Viewer
	case Write, Invoke:
		return r >= Editor
	case Exec:
		return r >= ProjectAdmin
	case Admin:
		return r >= ClusterAdmin
	}
	return false
}

// Permission is what a call needs: a verb on a kind of resource.
type Permission struct {
	Resource string
	Verb     Verb
}

func (p Permission) String() string { return p.Verb.String() + " " + p.Resource }

// Rule is a method's entry: its permission, and, for the methods whose
// need depends on the request (a job that runs a command), a refinement.
type Rule struct {
	Permission
	// Refine returns the permission a request needs when it needs more
	// than Permission (nil: Permission is all).
	Refine func(req any) Permission
}

// For returns the permission a call of method with req needs, and false
// when the method has no entry.
func For(method string, req any) (Permission, bool) {
	r, ok := methods[method]
	if !ok {
		return Permission{}, false
	}
	if r.Refine != nil && req != nil {
		return r.Refine(req), true
	}
	return r.Permission, true
}

// Public methods need no identity: health checks, reflection, and
// signing in.
func Public(method string) bool {
	return strings.HasPrefix(method, "/grpc.health.v1.Health/") || strings.HasPrefix(method, "/grpc.reflection.") ||
		method == "/bmaas.iam.v1.IAMService/GetAuthConfig" || method == "/bmaas.iam.v1.IAMService/Login"
}

// Methods lists the methods of the table (for tests).
func Methods() []string {
	out := make([]string, 0, len(methods))
	for m := range methods {
		out = append(out, m)
	}
	return out
}

// RouteFor returns the permission a hand-written HTTP route (its
// method and pattern, as registered) needs, and false when it has none.
func RouteFor(pattern string) (Permission, bool) {
	p, ok := routes[pattern]
	return p, ok
}

package authz

import (
	"sort"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	_ "github.com/bmaas/bmaas/api/bmaas/agent/v1"
	_ "github.com/bmaas/bmaas/api/bmaas/evaluator/v1"
	_ "github.com/bmaas/bmaas/api/bmaas/gateway/v1"
	_ "github.com/bmaas/bmaas/api/bmaas/iam/v1"
	_ "github.com/bmaas/bmaas/api/bmaas/registry/v1"
	schedulerv1 "github.com/bmaas/bmaas/api/bmaas/scheduler/v1"
	_ "github.com/bmaas/bmaas/api/inference"
)

// Every method of every service of the API has an entry, and the table
// names no method the API lacks: a new RPC fails this test until it is
// given its permission.
func TestEveryMethodHasAnEntry(t *testing.T) {
	api := map[string]bool{}
	protoregistry.GlobalFiles.RangeFiles(func(fd protoreflect.FileDescriptor) bool {
		pkg := string(fd.Package())
		if pkg != "inference" && (len(pkg) < 6 || pkg[:6] != "bmaas.") {
			return true
		}
		for i := range fd.Services().Len() {
			s := fd.Services().Get(i)
			for j := range s.Methods().Len() {
				api["/"+string(s.FullName())+"/"+string(s.Methods().Get(j).Name())] = true
			}
		}
		return true
	})
	require.Greater(t, len(api), 70)
	var missing, extra []string
	for m := range api {
		if _, ok := For(m, nil); !ok {
			missing = append(missing, m)
		}
	}
	for _, m := range Methods() {
		if !api[m] {
			extra = append(extra, m)
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	require.Empty(t, missing, "methods without a permission in pkg/authz/table.go")
	require.Empty(t, extra, "entries of pkg/authz/table.go for no method of the API")
}

func TestRolesAndRefinements(t *testing.T) {
	for _, tc := range []struct {
		role Role
		verb Verb
		want bool
	}{{Viewer, Read, true}, {Viewer, Write, false}, {Viewer, Invoke, false}, {Editor, Invoke, true}, {Editor, Exec, false},
		{ProjectAdmin, Exec, true}, {ProjectAdmin, Admin, false}, {ClusterAdmin, Admin, true}} {
		require.Equal(t, tc.want, tc.role.Grants(tc.verb), "%s %s", tc.role, tc.verb)
	}
	builtin := &schedulerv1.SubmitJobRequest{Spec: &schedulerv1.JobSpec{Runtime: &schedulerv1.JobSpec_Builtin{Builtin: &schedulerv1.BuiltinRuntime{}}}}
	process := &schedulerv1.SubmitJobRequest{Spec: &schedulerv1.JobSpec{Runtime: &schedulerv1.JobSpec_Process{Process: &schedulerv1.ProcessRuntime{Command: "sh"}}}}
	p, ok := For("/bmaas.scheduler.v1.SchedulerService/SubmitJob", builtin)
	require.True(t, ok)
	require.Equal(t, Permission{"jobs", Write}, p)
	p, _ = For("/bmaas.scheduler.v1.SchedulerService/SubmitJob", process)
	require.Equal(t, Permission{"jobs", Exec}, p, "a job that runs a command needs exec")
	_, ok = For("/bmaas.nothing.v1.X/Y", nil)
	require.False(t, ok)
	r, err := ParseRole("cluster-admin")
	require.NoError(t, err)
	require.Equal(t, ClusterAdmin, r)
	_, err = ParseRole("root")
	require.ErrorContains(t, err, "unknown role")
	p, ok = RouteFor("POST /openai/v1/chat/completions")
	require.True(t, ok)
	require.Equal(t, Invoke, p.Verb)
	require.True(t, Public("/grpc.health.v1.Health/Check"))
}

// Every resource of the table, and of its routes, is the cluster's, or
// carries its project, or is named within one: exactly one, so that no
// resource falls to the default project unnoticed.
func TestEveryResourceHasItsProject(t *testing.T) {
	perms := []Permission{}
	for _, r := range methods {
		perms = append(perms, r.Permission)
	}
	for _, p := range routes {
		perms = append(perms, p)
	}
	perms = append(perms, runtimeNeeds(nil), jobNeeds(nil), experimentNeeds(nil))
	for _, p := range perms {
		n := 0
		for _, in := range []bool{p.ClusterScoped(), p.ProjectAware(), p.Named()} {
			if in {
				n++
			}
		}
		require.Equal(t, 1, n, "%s: cluster-scoped %v, project-aware %v, named %v", p, p.ClusterScoped(), p.ProjectAware(), p.Named())
	}
}

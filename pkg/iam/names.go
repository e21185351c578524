package iam

import (
	"regexp"
	"strings"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/bmaas/bmaas/pkg/apierr"
)

// Names of the resources that belong to a project (models, datasets and
// what names them: jobs' and experiments' datasets and models,
// evaluations, policies) are unique within their project. A name says
// its project as "project/name"; a name without one is in the project
// of the call that says it, and the default project's resources keep
// their bare names, so single-team use, and the data written before
// projects, are unchanged.

// QualifiedName is name (bare, or already qualified, with an optional
// "@ref") in project: "project/name", or the bare name in the default
// project.
func QualifiedName(project, name string) string {
	if name == "" || strings.Contains(name, "/") {
		return normalName(name)
	}
	if project == "" || project == DefaultProject {
		return name
	}
	return project + "/" + name
}

// normalName drops the default project's prefix from a qualified name.
func normalName(name string) string {
	if rest, ok := strings.CutPrefix(name, DefaultProject+"/"); ok {
		return rest
	}
	return name
}

// SplitName is a name's project and bare name (the default project for
// a bare one).
func SplitName(name string) (project, bare string) {
	if p, b, ok := strings.Cut(name, "/"); ok {
		return p, b
	}
	return DefaultProject, name
}

// ProjectOfName is the project a qualified name is in.
func ProjectOfName(name string) string {
	p, _ := SplitName(name)
	return p
}

// NameKey is the key segment of a qualified name: the bare name in the
// default project (the layout from before projects), "project:name" in
// the others (':' is in no name, so no project's keys are a prefix of
// another's or of the default project's).
func NameKey(name string) string {
	p, b := SplitName(name)
	if p == DefaultProject {
		return b
	}
	return p + ":" + b
}

// ProjectPrefix narrows prefix, the prefix of a layout's keys named by
// qualified names, to those of project (all of them for the default
// project: its names are those without ':', see InProject).
func ProjectPrefix(prefix, project string) string {
	if project == "" || project == DefaultProject {
		return prefix
	}
	return prefix + project + ":"
}

// InProject says whether the qualified name is in project.
func InProject(name, project string) bool {
	if project == "" {
		project = DefaultProject
	}
	return ProjectOfName(name) == project
}

// CheckQualified checks a qualified name: its project part, when it has
// one, is a project's name, and check accepts its bare part. Errors name
// field.
func CheckQualified(field, name string, check func(field, bare string) error) error {
	p, b, ok := strings.Cut(name, "/")
	if !ok {
		return check(field, name)
	}
	if !projectNameRE(p) {
		return apierr.Invalid(field, "%q: the project %q must match [a-z0-9][a-z0-9-]{0,62}", name, p)
	}
	if strings.Contains(b, "/") {
		return apierr.Invalid(field, "%q: a name says at most one project (project/name)", name)
	}
	return check(field, b)
}

// CheckQualifiedMatch checks a qualified name whose bare part must match
// re; the error names field.
func CheckQualifiedMatch(field, name string, re *regexp.Regexp) error {
	return CheckQualified(field, name, func(field, bare string) error {
		if !re.MatchString(bare) {
			return apierr.Invalid(field, "must match [project/]%s, got %q", re, name)
		}
		return nil
	})
}

func projectNameRE(p string) bool {
	if p == "" || len(p) > 63 {
		return false
	}
	for i, c := range p {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' && i > 0) {
			return false
		}
	}
	return true
}

// refFields are the fields, anywhere in a request, that name a resource
// of a project: a model or a dataset (with an optional "@ref"), a
// deployment, an alert rule.
var refFields = map[protoreflect.Name]bool{"model": true, "dataset": true, "deployment": true, "rule": true}

// nameHolders are the fields whose message's "name" names the resource
// a call is about (CreateModel's model, UploadDataset's header,
// CreateDeployment's deployment).
var nameHolders = map[protoreflect.Name]bool{"model": true, "dataset": true, "header": true, "deployment": true, "rule": true,
	"runtime": true}

// qualifyRequest qualifies, in place, every bare name req gives of a
// resource of a project with project: every "model" and "dataset"
// field, and, when names (a call on models or datasets), the request's
// own "name". It returns the projects of the names it holds that are
// not project, the caller's read of which is checked.
func qualifyRequest(req proto.Message, project string, names bool) []string {
	var others []string
	qualifyMessage(req.ProtoReflect(), project, names, &others)
	return others
}

func qualifyMessage(m protoreflect.Message, project string, names bool, others *[]string) {
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.Kind() == protoreflect.StringKind && !fd.IsList() && !fd.IsMap():
			if refFields[fd.Name()] || names && fd.Name() == "name" {
				q := QualifiedName(project, v.String())
				if q != v.String() {
					m.Set(fd, protoreflect.ValueOfString(q))
				}
				if p := ProjectOfName(q); p != project && !(p == DefaultProject && project == "") {
					*others = append(*others, p)
				}
			}
		case fd.Kind() == protoreflect.MessageKind && !fd.IsMap():
			if strings.HasPrefix(string(fd.Message().FullName()), "google.protobuf.") {
				return true
			}
			sub := names && nameHolders[fd.Name()]
			if fd.IsList() {
				l := v.List()
				for i := range l.Len() {
					qualifyMessage(l.Get(i).Message(), project, false, others)
				}
				return true
			}
			qualifyMessage(v.Message(), project, sub, others)
		}
		return true
	})
}

// primaryName is the name a call on models or datasets is about, as
// given: its "name", "model" or "dataset", or its carried message's
// ("" for a call that names none, as a list).
func primaryName(req proto.Message) string {
	if req == nil {
		return ""
	}
	m := req.ProtoReflect()
	if s := stringField(m, "name", "model", "dataset", "deployment", "rule"); s != "" {
		return s
	}
	fds := m.Descriptor().Fields()
	for _, h := range []protoreflect.Name{"model", "dataset", "header", "policy", "evaluation", "deployment", "rule", "runtime"} {
		if fd := fds.ByName(h); fd != nil && fd.Kind() == protoreflect.MessageKind && !fd.IsList() && !fd.IsMap() && m.Has(fd) {
			if s := stringField(m.Get(fd).Message(), "name", "model", "dataset"); s != "" {
				return s
			}
		}
	}
	return ""
}

func stringField(m protoreflect.Message, names ...protoreflect.Name) string {
	fds := m.Descriptor().Fields()
	for _, n := range names {
		if fd := fds.ByName(n); fd != nil && fd.Kind() == protoreflect.StringKind && !fd.IsList() {
			if s := m.Get(fd).String(); s != "" {
				return s
			}
		}
	}
	return ""
}

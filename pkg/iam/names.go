package iam

import (
	"regexp"
	"strings"
	"sync"

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
	if !ProjectName.MatchString(p) {
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

// ProjectName is what a project's name matches.
var ProjectName = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

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
// resource of a project with project: every "model", "dataset",
// "deployment" and "rule" field, at any depth, and, when names (a call
// on a resource it names itself), the request's own "name" (or its
// carried message's: CreateModel's model.name). It returns the projects
// of the names it holds that are not project, the caller's read of which
// is checked.
func qualifyRequest(req proto.Message, project string, names bool) []string {
	m := req.ProtoReflect()
	info := shapeOf(m.Descriptor())
	if !info.holds {
		return nil // a message that can name nothing (a list)
	}
	return qualifyMessage(m, info, project, names, nil)
}

func qualifyMessage(m protoreflect.Message, info *shape, project string, names bool, others []string) []string {
	for _, fd := range info.refs {
		if !m.Has(fd) || !refFields[fd.Name()] && !(names && fd.Name() == "name") {
			continue
		}
		v := m.Get(fd).String()
		q := QualifiedName(project, v)
		if q != v {
			m.Set(fd, protoreflect.ValueOfString(q))
		}
		if p := ProjectOfName(q); p != project && !(p == DefaultProject && project == "") {
			others = append(others, p)
		}
	}
	for _, fd := range info.subs {
		if !m.Has(fd) {
			continue
		}
		sub := shapeOf(fd.Message())
		if fd.IsList() {
			l := m.Get(fd).List()
			for i := range l.Len() {
				others = qualifyMessage(l.Get(i).Message(), sub, project, false, others)
			}
			continue
		}
		others = qualifyMessage(m.Get(fd).Message(), sub, project, names && nameHolders[fd.Name()], others)
	}
	return others
}

// shape is what of a message type the guard reads: its string fields
// that may name a resource ("name" among them), its message fields that
// may hold one, and whether it may hold any at all.
type shape struct {
	refs  []protoreflect.FieldDescriptor
	subs  []protoreflect.FieldDescriptor
	holds bool
	// primary and holders are where primaryName looks, in order.
	primary, holders []protoreflect.FieldDescriptor
}

var shapes sync.Map // protoreflect.FullName -> *shape

// shapeOf is md's shape, worked out once per message type.
func shapeOf(md protoreflect.MessageDescriptor) *shape {
	if s, ok := shapes.Load(md.FullName()); ok {
		return s.(*shape)
	}
	return shapeOfNew(md, map[protoreflect.FullName]bool{})
}

func shapeOfNew(md protoreflect.MessageDescriptor, seen map[protoreflect.FullName]bool) *shape {
	if s, ok := shapes.Load(md.FullName()); ok {
		return s.(*shape)
	}
	seen[md.FullName()] = true
	s := &shape{}
	fds := md.Fields()
	for i := range fds.Len() {
		fd := fds.Get(i)
		switch {
		case fd.IsMap():
		case fd.Kind() == protoreflect.StringKind && !fd.IsList() && (refFields[fd.Name()] || fd.Name() == "name"):
			s.refs = append(s.refs, fd)
			s.holds = true
		case fd.Kind() == protoreflect.MessageKind && !strings.HasPrefix(string(fd.Message().FullName()), "google.protobuf."):
			if seen[fd.Message().FullName()] {
				// A recursive type: it may hold what its outer holds.
				s.subs = append(s.subs, fd)
				s.holds = true
				continue
			}
			if shapeOfNew(fd.Message(), seen).holds {
				s.subs = append(s.subs, fd)
				s.holds = true
			}
		}
	}
	for _, n := range []protoreflect.Name{"name", "model", "dataset", "deployment", "rule"} {
		if fd := fds.ByName(n); fd != nil && fd.Kind() == protoreflect.StringKind && !fd.IsList() {
			s.primary = append(s.primary, fd)
		}
	}
	for _, n := range []protoreflect.Name{"model", "dataset", "header", "policy", "evaluation", "deployment", "rule", "runtime"} {
		if fd := fds.ByName(n); fd != nil && fd.Kind() == protoreflect.MessageKind && !fd.IsList() && !fd.IsMap() {
			s.holders = append(s.holders, fd)
		}
	}
	delete(seen, md.FullName())
	actual, _ := shapes.LoadOrStore(md.FullName(), s)
	return actual.(*shape)
}

// primaryName is the name a call is about, as given: its "name",
// "model", "dataset", "deployment" or "rule", or its carried message's
// ("" for a call that names none, as a list).
func primaryName(req proto.Message) string {
	if req == nil {
		return ""
	}
	m := req.ProtoReflect()
	info := shapeOf(m.Descriptor())
	for _, fd := range info.primary {
		if s := m.Get(fd).String(); s != "" {
			return s
		}
	}
	for _, fd := range info.holders {
		if m.Has(fd) {
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

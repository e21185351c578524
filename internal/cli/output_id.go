package cli

import (
	"strconv"

	"google.golang.org/protobuf/reflect/protoreflect"
)

// idsOf finds what -o id prints of a result: the id of each resource in
// it (a job's, an experiment's), its name where it has no id (a model, a
// deployment, a dataset), NAME@VERSION for a version. A response
// wrapping resources ({"job": {...}}, {"jobs": [...]}) gives theirs.
func idsOf(m protoreflect.Message) []string {
	if id, ok := idOf(m); ok {
		return []string{id}
	}
	var out []string
	fields := m.Descriptor().Fields()
	for i := range fields.Len() {
		f := fields.Get(i)
		if f.Kind() != protoreflect.MessageKind || f.IsMap() || !m.Has(f) {
			continue
		}
		if f.IsList() {
			l := m.Get(f).List()
			for j := range l.Len() {
				out = append(out, idsOf(l.Get(j).Message())...)
			}
			continue
		}
		if ids := idsOf(m.Get(f).Message()); len(ids) > 0 {
			return append(out, ids...)
		}
	}
	return out
}

// idOf is a resource's own identifier, if m is a resource.
func idOf(m protoreflect.Message) (string, bool) {
	str := func(name protoreflect.Name) string {
		f := m.Descriptor().Fields().ByName(name)
		if f == nil || f.Kind() != protoreflect.StringKind || f.IsList() {
			return ""
		}
		return m.Get(f).String()
	}
	if id := str("id"); id != "" {
		return id, true
	}
	if model := str("model"); model != "" {
		if f := m.Descriptor().Fields().ByName("version"); f != nil && f.Kind() == protoreflect.Int64Kind && m.Get(f).Int() > 0 {
			return model + "@" + strconv.FormatInt(m.Get(f).Int(), 10), true
		}
	}
	if name := str("name"); name != "" {
		return name, true
	}
	return "", false
}

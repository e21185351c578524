package registry

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/bmaas/bmaas/pkg/apierr"
	"github.com/bmaas/bmaas/pkg/iam"
)

var (
	nameRE  = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)
	aliasRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)
	shaRE   = regexp.MustCompile(`^[0-9a-f]{64}$`)
	labelRE = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9._/-]{0,61}[A-Za-z0-9])?$`)
)

// refLatest names the newest READY version.
const refLatest = "latest"

// checkName checks a model's or dataset's name, bare or qualified by
// its project ("vision/resnet").
func checkName(field, name string) error {
	return iam.CheckQualified(field, name, checkBareName)
}

func checkBareName(field, name string) error {
	if name == "" {
		return apierr.Invalid(field, "is required")
	}
	if !nameRE.MatchString(name) {
		return apierr.Invalid(field, "%q must match [a-z0-9][a-z0-9-]{0,62}", name)
	}
	return nil
}

func checkAlias(field, alias string) error {
	if alias == "" {
		return apierr.Invalid(field, "is required")
	}
	if !aliasRE.MatchString(alias) {
		return apierr.Invalid(field, "%q must match [a-z0-9][a-z0-9_-]{0,62}", alias)
	}
	if _, err := strconv.ParseUint(alias, 10, 64); err == nil {
		return apierr.Invalid(field, "%q is all digits; aliases are never version numbers", alias)
	}
	if alias == refLatest {
		return apierr.Invalid(field, "%q is reserved for the newest READY version", alias)
	}
	return nil
}

func checkSHA(field, sha string) error {
	if sha != "" && !shaRE.MatchString(sha) {
		return apierr.Invalid(field, "must be 64 lowercase hex digits, got %q", sha)
	}
	return nil
}

func checkLabels(field string, labels map[string]string) error {
	if len(labels) > 64 {
		return apierr.Invalid(field, "at most 64 labels, got %d", len(labels))
	}
	for k, v := range labels {
		if !labelRE.MatchString(k) {
			return apierr.Invalid(field, "key %q must be 1-63 letters, digits, '.', '_', '-' or '/'", k)
		}
		if len(v) > 256 {
			return apierr.Invalid(field+"["+k+"]", "value longer than 256 bytes")
		}
	}
	return nil
}

// ref is a parsed version reference: a number, an alias or latest.
type ref struct {
	num   int64
	alias string
}

func (r ref) String() string {
	if r.alias != "" {
		return r.alias
	}
	return strconv.FormatInt(r.num, 10)
}

func parseRef(field, s string) (ref, error) {
	if s == "" {
		return ref{}, apierr.Invalid(field, "is required (a version number, an alias or latest)")
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if n <= 0 {
			return ref{}, apierr.Invalid(field, "version numbers start at 1, got %d", n)
		}
		return ref{num: n}, nil
	}
	if s == refLatest {
		return ref{alias: refLatest}, nil
	}
	if err := checkAlias(field, s); err != nil {
		return ref{}, err
	}
	return ref{alias: s}, nil
}

// parseSelector parses "k=v,k2=v2" into a map.
func parseSelector(field, s string) (map[string]string, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	sel := map[string]string{}
	for _, part := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok || k == "" {
			return nil, apierr.Invalid(field, "%q is not key=value", part)
		}
		sel[k] = v
	}
	return sel, nil
}

func matches(labels, sel map[string]string) bool {
	for k, v := range sel {
		if got, ok := labels[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// versionKey pads the number so that key order is numeric order.
func versionSuffix(v int64) string { return fmt.Sprintf("%020d", v) }

package cli

import (
	"errors"
	"fmt"
	"strings"
)

// Latest is the reference to the newest READY version.
const Latest = "latest"

// ParseRef splits a version reference NAME@REF into its name and ref. REF
// is a version number, an alias or `latest`; a plain NAME means
// NAME@latest. The name and the ref must be non-empty and the reference
// holds at most one '@'.
func ParseRef(s string) (name, ref string, err error) {
	name, ref, found := strings.Cut(s, "@")
	switch {
	case s == "":
		return "", "", errors.New("empty reference: expected NAME or NAME@REF")
	case name == "":
		return "", "", fmt.Errorf("reference %q: missing name before '@'", s)
	case found && ref == "":
		return "", "", fmt.Errorf("reference %q: missing version or alias after '@'", s)
	case strings.Contains(ref, "@"):
		return "", "", fmt.Errorf("reference %q: more than one '@'", s)
	case strings.ContainsAny(s, " \t\n/"):
		return "", "", fmt.Errorf("reference %q: must not contain spaces or '/'", s)
	}
	if !found {
		ref = Latest
	}
	return name, ref, nil
}

// isVersionNumber reports whether s is all ASCII digits (and not empty).
func isVersionNumber(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// checkAlias rejects alias names that could not be told apart from a
// version reference: all digits (a version number) and `latest`.
func checkAlias(alias string) error {
	switch {
	case alias == "":
		return usageErrorf("alias must not be empty")
	case isVersionNumber(alias):
		return usageErrorf("alias %q is all digits and would read as a version number; choose a name with a letter (e.g. v%s)", alias, alias)
	case alias == Latest:
		return usageErrorf("alias %q is reserved for the newest READY version", alias)
	case strings.ContainsAny(alias, "@/ \t\n"):
		return usageErrorf("alias %q must not contain '@', '/' or spaces", alias)
	}
	return nil
}

// refArg parses the NAME@REF argument of a command as a usage error.
func refArg(s string) (name, ref string, err error) {
	name, ref, err = ParseRef(s)
	if err != nil {
		return "", "", &usageError{msg: err.Error()}
	}
	return name, ref, nil
}

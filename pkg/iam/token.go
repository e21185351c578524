// Package iam is who calls the platform: API tokens (random, stored as
// their SHA-256 in etcd, followed by every process through a watch, so a
// revocation holds everywhere within a second), the principal a call
// runs as, and the guard that authenticates every gRPC call and HTTP
// request, authorizes it against pkg/authz's table and records it in the
// audit trail (pkg/iam's Auditor).
//
// Keys: /bmaas/v1/tokens/<id> (iamv1.StoredToken), /bmaas/v1/projects/<name>
// (iamv1.Project). The registry's process serves the IAM API
// (services/iam); every process reads the tokens.
package iam

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"encoding/base64"
	"strings"

	"github.com/bmaas/bmaas/pkg/store"
)

// tokenPrefix starts every bearer secret the platform issues.
const tokenPrefix = "bmaas_"

// DefaultProject is the project every identity falls back to, and the
// one existing resources belong to.
const DefaultProject = "default"

// TokenKey is the etcd key of a token.
func TokenKey(id string) string { return store.Key("tokens", id) }

// TokensPrefix is the prefix of every token's key.
var TokensPrefix = store.Key("tokens") + "/"

// ProjectKey is the etcd key of a project.
func ProjectKey(name string) string { return store.Key("projects", name) }

// ProjectsPrefix is the prefix of every project's key.
var ProjectsPrefix = store.Key("projects") + "/"

var idEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// NewSecret makes a token: its id (public, the key in etcd), the bearer
// secret to hand out once (bmaas_<id>_<43 random characters>) and the
// SHA-256 to store.
func NewSecret() (id, secret string, sum []byte) {
	var idb [8]byte
	var key [32]byte
	_, _ = rand.Read(idb[:])
	_, _ = rand.Read(key[:])
	id = idEncoding.EncodeToString(idb[:])
	secret = tokenPrefix + id + "_" + base64.RawURLEncoding.EncodeToString(key[:])
	h := sha256.Sum256([]byte(secret))
	return id, secret, h[:]
}

// ParseSecret returns the id of a bearer secret the platform issued, and
// false for anything else.
func ParseSecret(secret string) (id string, ok bool) {
	rest, ok := strings.CutPrefix(secret, tokenPrefix)
	if !ok {
		return "", false
	}
	id, key, ok := strings.Cut(rest, "_")
	if !ok || len(id) != 13 || len(key) != 43 {
		return "", false
	}
	return id, true
}

// secretMatches says, in constant time, whether secret hashes to sum.
func secretMatches(secret string, sum []byte) bool {
	h := sha256.Sum256([]byte(secret))
	return subtle.ConstantTimeCompare(h[:], sum) == 1
}

// bearer returns the credentials of an Authorization value under the
// Bearer scheme, whose name is case-insensitive (RFC 7235).
func bearer(v string) (string, bool) {
	scheme, tok, ok := strings.Cut(strings.TrimSpace(v), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	return strings.TrimLeft(tok, " "), true
}

// Sum is the SHA-256 a secret is stored as.
func Sum(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

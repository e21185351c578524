package membership

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
)

// KeyPrefix holds the members, one prefix per service.
const KeyPrefix = "/bmaas/v1/members/"

// DefaultTTL is the lease TTL when Join gets ttl 0.
const DefaultTTL = 5 * time.Second

// Sentinel errors; match them with errors.Is.
var (
	// ErrInvalidMember means a member's service or ID is empty or malformed.
	ErrInvalidMember = errors.New("invalid member")
	// ErrLeaseLost means the registration's lease is gone (expired, revoked,
	// or the registration left).
	ErrLeaseLost = errors.New("membership lease lost")
)

// Member is one live replica of a service.
type Member struct {
	ID      string            `json:"id"`
	Service string            `json:"service"`
	Addr    string            `json:"addr,omitempty"`
	Meta    map[string]string `json:"meta,omitempty"`
}

// Validate checks the member's service and ID.
func (m Member) Validate() error {
	if err := checkName("service", m.Service); err != nil {
		return err
	}
	return checkName("id", m.ID)
}

func checkName(field, s string) error {
	if s == "" || strings.ContainsAny(s, "/\x00") {
		return fmt.Errorf("%w: %s %q must be non-empty and contain no '/'", ErrInvalidMember, field, s)
	}
	return nil
}

// Prefix is the key prefix of a service's members, with its trailing slash.
func Prefix(service string) string {
	return KeyPrefix + service + "/"
}

// Key is the member's etcd key.
func (m Member) Key() string {
	return Prefix(m.Service) + m.ID
}

// clone copies m with its own Meta map.
func (m Member) clone() Member {
	if m.Meta != nil {
		meta := make(map[string]string, len(m.Meta))
		for k, v := range m.Meta {
			meta[k] = v
		}
		m.Meta = meta
	}
	return m
}

// decode parses a member stored at key under prefix; the key names the ID
// and the prefix the service, whatever the value says.
func decode(service, prefix, key string, value []byte) (Member, bool) {
	id, ok := strings.CutPrefix(key, prefix)
	if !ok || id == "" || strings.Contains(id, "/") {
		return Member{}, false
	}
	var m Member
	if err := json.Unmarshal(value, &m); err != nil {
		return Member{}, false
	}
	m.ID, m.Service = id, service
	return m, true
}

// ttlSeconds rounds ttl up to whole seconds, at least 1; 0 means DefaultTTL.
func ttlSeconds(ttl time.Duration) int64 {
	if ttl <= 0 {
		ttl = DefaultTTL
	}
	return max(1, int64(math.Ceil(ttl.Seconds())))
}

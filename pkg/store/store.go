// Package store keeps protobuf messages in etcd under /bmaas/v1/<kind>/<id>
// with optimistic concurrency: every read returns the key's mod revision,
// every conditional write names the revision it read, and a stale write
// fails with apierr.ErrConflict (Aborted at the edge) instead of losing an
// update, like Kubernetes' resourceVersion.
package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/protobuf/proto"

	"github.com/bmaas/bmaas/pkg/apierr"
)

// Prefix is the root of every bmaas key.
const Prefix = "/bmaas/v1/"

// ErrNotFound is returned when a key does not exist.
var ErrNotFound = fmt.Errorf("key %w", apierr.ErrNotFound)

// Key builds /bmaas/v1/<kind>/<part>/<part>...
func Key(kind string, parts ...string) string {
	var b strings.Builder
	b.WriteString(Prefix)
	b.WriteString(kind)
	for _, p := range parts {
		b.WriteByte('/')
		b.WriteString(p)
	}
	return b.String()
}

// Store reads and writes messages in etcd.
type Store struct {
	cli *clientv3.Client
}

// New returns a store over cli.
func New(cli *clientv3.Client) *Store { return &Store{cli: cli} }

// Client is the underlying etcd client.
func (s *Store) Client() *clientv3.Client { return s.cli }

// Get reads key into msg and returns its mod revision.
func (s *Store) Get(ctx context.Context, key string, msg proto.Message) (int64, error) {
	resp, err := s.cli.Get(ctx, key)
	if err != nil {
		return 0, fmt.Errorf("etcd get %s: %w", key, err)
	}
	if len(resp.Kvs) == 0 {
		return 0, ErrNotFound
	}
	kv := resp.Kvs[0]
	if err := proto.Unmarshal(kv.Value, msg); err != nil {
		return 0, fmt.Errorf("decode %s: %w", key, err)
	}
	return kv.ModRevision, nil
}

// Cond is a condition on one key's mod revision; Rev 0 means "absent".
// With Prefix, it is that no key under Key was written after Rev (the
// revision of a read of them): a key made or changed since fails it, so
// a check of what the prefix holds (a quota) holds at the commit.
type Cond struct {
	Key    string
	Rev    int64
	Prefix bool
}

// Op is one write of a transaction.
type Op struct {
	key    string
	msg    proto.Message
	raw    []byte
	del    bool
	prefix bool
	lease  clientv3.LeaseID
}

// Put writes msg at key.
func Put(key string, msg proto.Message) Op { return Op{key: key, msg: msg} }

// PutRaw writes raw bytes at key, optionally under a lease (0 for none).
func PutRaw(key string, raw []byte, lease clientv3.LeaseID) Op {
	return Op{key: key, raw: raw, lease: lease}
}

// Delete removes key.
func Delete(key string) Op { return Op{key: key, del: true} }

// DeletePrefix removes every key under prefix.
func DeletePrefix(prefix string) Op { return Op{key: prefix, del: true, prefix: true} }

// Commit applies ops atomically if every condition holds, and returns the
// new revision. A failed condition is an apierr.ErrConflict; a write over
// etcd's request limit is a *TooLargeError (apierr.ErrResourceExhausted).
func (s *Store) Commit(ctx context.Context, conds []Cond, ops ...Op) (int64, error) {
	cmps := make([]clientv3.Cmp, 0, len(conds))
	for _, c := range conds {
		if c.Prefix {
			cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(c.Key), "<", c.Rev+1).WithPrefix())
			continue
		}
		if c.Rev == 0 {
			cmps = append(cmps, clientv3.Compare(clientv3.CreateRevision(c.Key), "=", 0))
		} else {
			cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(c.Key), "=", c.Rev))
		}
	}
	thens := make([]clientv3.Op, 0, len(ops))
	size := 0
	for _, o := range ops {
		switch {
		case o.del && o.prefix:
			thens = append(thens, clientv3.OpDelete(o.key, clientv3.WithPrefix()))
		case o.del:
			thens = append(thens, clientv3.OpDelete(o.key))
		default:
			val := o.raw
			if o.msg != nil {
				b, err := proto.Marshal(o.msg)
				if err != nil {
					return 0, fmt.Errorf("encode %s: %w", o.key, err)
				}
				val = b
			}
			var opts []clientv3.OpOption
			if o.lease != 0 {
				opts = append(opts, clientv3.WithLease(o.lease))
			}
			size += len(o.key) + len(val)
			thens = append(thens, clientv3.OpPut(o.key, string(val), opts...))
		}
	}
	resp, err := s.cli.Txn(ctx).If(cmps...).Then(thens...).Commit()
	if tooLarge(err) {
		return 0, &TooLargeError{Bytes: size}
	}
	if err != nil {
		return 0, fmt.Errorf("etcd txn: %w", err)
	}
	if !resp.Succeeded {
		return 0, ErrStale
	}
	return resp.Header.Revision, nil
}

// ErrStale is returned by Commit when a condition failed: the object was
// changed (or created, or deleted) since it was read.
var ErrStale = fmt.Errorf("object changed since it was read; read it again and retry: %w", apierr.ErrConflict)

// IsStale reports whether err is a failed Commit condition.
func IsStale(err error) bool { return errors.Is(err, ErrStale) }

// Etag renders a revision as the opaque etag clients send back.
func Etag(rev int64) string { return strconv.FormatInt(rev, 10) }

// ParseEtag parses an etag; "" is 0 (no condition).
func ParseEtag(field, etag string) (int64, error) {
	if etag == "" {
		return 0, nil
	}
	rev, err := strconv.ParseInt(etag, 10, 64)
	if err != nil || rev <= 0 {
		return 0, apierr.Invalid(field, "not an etag this server issued: %q", etag)
	}
	return rev, nil
}

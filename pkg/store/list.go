package store

import (
	"context"
	"encoding/base64"
	"fmt"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/protobuf/proto"

	"github.com/bmaas/bmaas/pkg/apierr"
)

// Page limits.
const (
	DefaultPageSize = 100
	MaxPageSize     = 1000
)

// PageSize validates a request's page_size.
func PageSize(field string, n int32) (int, error) {
	switch {
	case n < 0:
		return 0, apierr.Invalid(field, "must not be negative, got %d", n)
	case n == 0:
		return DefaultPageSize, nil
	case n > MaxPageSize:
		return MaxPageSize, nil
	}
	return int(n), nil
}

// Item is one decoded entry of a listing.
type Item[T proto.Message] struct {
	Key string
	Rev int64
	Msg T
}

// List pages through the messages whose keys start with prefix, in key
// order. keep filters (nil keeps all). The token is opaque: the last key
// returned, encoded. It returns the items and the next token ("" at the end).
func List[T proto.Message](ctx context.Context, s *Store, prefix string, pageSize int, token string,
	newMsg func() T, keep func(T) bool) ([]Item[T], string, error) {
	start := prefix
	if token != "" {
		k, err := base64.RawURLEncoding.DecodeString(token)
		if err != nil || len(k) <= len(prefix) || string(k[:len(prefix)]) != prefix {
			return nil, "", apierr.Invalid("page_token", "malformed page token")
		}
		start = string(k) + "\x00"
	}
	end := clientv3.GetPrefixRangeEnd(prefix)
	items := make([]Item[T], 0, min(pageSize, 64))
	batch := int64(max(pageSize+1, 64))
	for {
		resp, err := s.cli.Get(ctx, start, clientv3.WithRange(end), clientv3.WithLimit(batch))
		if err != nil {
			return nil, "", fmt.Errorf("etcd list %s: %w", prefix, err)
		}
		for _, kv := range resp.Kvs {
			msg := newMsg()
			if err := proto.Unmarshal(kv.Value, msg); err != nil {
				return nil, "", fmt.Errorf("decode %s: %w", kv.Key, err)
			}
			if keep != nil && !keep(msg) {
				continue
			}
			if len(items) == pageSize {
				last := items[len(items)-1].Key
				return items, base64.RawURLEncoding.EncodeToString([]byte(last)), nil
			}
			items = append(items, Item[T]{Key: string(kv.Key), Rev: kv.ModRevision, Msg: msg})
		}
		if !resp.More {
			return items, "", nil
		}
		start = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
}

// Keys returns every key under prefix (no values), for scans.
func (s *Store) Keys(ctx context.Context, prefix string) ([]string, error) {
	resp, err := s.cli.Get(ctx, prefix, clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		return nil, fmt.Errorf("etcd keys %s: %w", prefix, err)
	}
	keys := make([]string, len(resp.Kvs))
	for i, kv := range resp.Kvs {
		keys[i] = string(kv.Key)
	}
	return keys, nil
}

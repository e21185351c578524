package membership

import (
	"context"
	"fmt"
	"reflect"
	"sort"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// List returns the members of service, sorted by ID. Entries that cannot be
// decoded are skipped.
func List(ctx context.Context, cli *clientv3.Client, service string) ([]Member, error) {
	members, _, err := list(ctx, cli, service)
	if err != nil {
		return nil, err
	}
	return sorted(members), nil
}

// list reads the members by key, and the revision read at.
func list(ctx context.Context, cli *clientv3.Client, service string) (map[string]Member, int64, error) {
	if err := checkName("service", service); err != nil {
		return nil, 0, err
	}
	prefix := Prefix(service)
	resp, err := cli.Get(ctx, prefix, clientv3.WithPrefix())
	if err != nil {
		return nil, 0, fmt.Errorf("list members of %s: %w", service, err)
	}
	members := make(map[string]Member, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		if m, ok := decode(service, prefix, string(kv.Key), kv.Value); ok {
			members[string(kv.Key)] = m
		}
	}
	return members, resp.Header.Revision, nil
}

func sorted(members map[string]Member) []Member {
	out := make([]Member, 0, len(members))
	for _, m := range members {
		out = append(out, m.clone())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Watch calls fn with the full member list of service at start and after
// every change, until ctx is done; then it returns nil. fn runs on Watch's
// goroutine and gets its own copy of the list. After a watch failure (for
// example a compacted revision) Watch lists again and calls fn if the list
// differs. It returns an error only if the first List fails.
func Watch(ctx context.Context, cli *clientv3.Client, service string, fn func([]Member)) error {
	members, rev, err := list(ctx, cli, service)
	if err != nil {
		return err
	}
	last := sorted(members)
	fn(sorted(members))
	prefix := Prefix(service)
	retry := time.Duration(0)
	for ctx.Err() == nil {
		if retry > 0 {
			if !wait(ctx, retry) {
				break
			}
			fresh, freshRev, err := list(ctx, cli, service)
			if err != nil {
				retry = min(2*retry, 5*time.Second)
				continue
			}
			members, rev = fresh, freshRev
			if cur := sorted(members); !reflect.DeepEqual(cur, last) {
				last = cur
				fn(sorted(members))
			}
		}
		retry = 50 * time.Millisecond
		wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
		for wr := range cli.Watch(wctx, prefix, clientv3.WithPrefix(), clientv3.WithRev(rev+1)) {
			if wr.Err() != nil {
				break
			}
			for _, ev := range wr.Events {
				key := string(ev.Kv.Key)
				switch ev.Type {
				case mvccpb.PUT:
					if m, ok := decode(service, prefix, key, ev.Kv.Value); ok {
						members[key] = m
					} else {
						delete(members, key)
					}
				case mvccpb.DELETE:
					delete(members, key)
				}
			}
			rev = wr.Header.Revision
			if cur := sorted(members); !reflect.DeepEqual(cur, last) {
				last = cur
				fn(sorted(members))
			}
		}
		cancel()
	}
	return nil
}

// wait waits d and reports whether ctx is still live.
func wait(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

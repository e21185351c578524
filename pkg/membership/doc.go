// Package membership tracks the live replicas of each service (and the
// agents' nodes) in etcd.
//
// A member Joins by writing /bmaas/v1/members/<service>/<id> as JSON under a
// lease that it keeps alive. If the process dies or is cut off from etcd, the
// lease lapses after its TTL and the key disappears; Leave revokes the lease
// so the key goes at once, which is what a graceful shutdown does first.
//
// List reads the members of a service; Watch follows them, calling back with
// the full list at start and after every change, and resynchronises by
// itself after watch errors (such as compaction), so callers can treat it as
// level-triggered.
package membership

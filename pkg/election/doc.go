// Package election elects one leader per service among its replicas, on
// etcd leases.
//
// Each replica calls Run, which campaigns under /bmaas/v1/leader/<service>/.
// The elected replica's lead function runs with a context that is cancelled as
// soon as leadership may be lost: the session's lease lapses or is revoked,
// the leader key disappears, or Run's own context ends. Because a partitioned
// leader only notices the loss when its lease times out locally, work that
// must never be done by two leaders at once should carry the term: the leader
// key's create revision, which only grows from one leader to the next, and can
// be checked in etcd transactions as a fencing token.
//
// On exit Run resigns (revokes its lease), so a standby takes over at once
// rather than after the TTL.
package election

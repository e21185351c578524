package membership

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Registration is a member kept alive in etcd.
type Registration struct {
	cli    *clientv3.Client
	lease  clientv3.LeaseID
	ttl    time.Duration
	logger *slog.Logger
	cancel context.CancelFunc // stops the keepalive
	done   chan struct{}

	mu     sync.Mutex
	member Member
	left   bool
}

// Join registers m under a lease of ttl (rounded up to whole seconds; 0 means
// DefaultTTL) and keeps the lease alive in the background. The registration
// lasts until Leave, or until ctx is done, which leaves as well; Done is
// closed when it ends for any reason, including a lapsed lease.
func Join(ctx context.Context, cli *clientv3.Client, m Member, ttl time.Duration, logger *slog.Logger) (*Registration, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	m = m.clone()
	value, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encode member %s: %w", m.ID, err)
	}
	secs := ttlSeconds(ttl)
	grant, err := cli.Grant(ctx, secs)
	if err != nil {
		return nil, fmt.Errorf("grant membership lease: %w", err)
	}
	r := &Registration{
		cli: cli, lease: grant.ID, ttl: time.Duration(secs) * time.Second,
		logger: logger.With("service", m.Service, "member", m.ID),
		done:   make(chan struct{}), member: m,
	}
	if _, err := cli.Put(ctx, m.Key(), string(value), clientv3.WithLease(grant.ID)); err != nil {
		r.revoke()
		return nil, fmt.Errorf("register member %s: %w", m.Key(), err)
	}
	kaCtx, cancel := context.WithCancel(ctx)
	r.cancel = cancel
	ka, err := cli.KeepAlive(kaCtx, grant.ID)
	if err != nil {
		cancel()
		r.revoke()
		return nil, fmt.Errorf("keep membership lease alive: %w", err)
	}
	go r.keepAlive(kaCtx, ka)
	r.logger.Debug("joined", "lease", int64(grant.ID))
	return r, nil
}

// keepAlive drains the keepalive responses until the lease is lost or the
// registration ends, then closes done.
func (r *Registration) keepAlive(ctx context.Context, ka <-chan *clientv3.LeaseKeepAliveResponse) {
	defer close(r.done)
	for range ka {
	}
	if ctx.Err() != nil {
		// Left, or the parent context ended: make sure the key goes now.
		r.revoke()
		return
	}
	r.logger.Warn("membership lease lost")
}

// Leave removes the member at once by revoking its lease and stops the
// keepalive. Leaving twice, or after the lease was lost, is not an error.
func (r *Registration) Leave(ctx context.Context) error {
	r.mu.Lock()
	r.left = true
	r.mu.Unlock()
	r.cancel()
	_, err := r.cli.Revoke(ctx, r.lease)
	select {
	case <-r.done:
	case <-ctx.Done():
		return fmt.Errorf("leave %s: %w", r.Member().Key(), ctx.Err())
	}
	if err != nil && !errors.Is(err, rpctypes.ErrLeaseNotFound) {
		return fmt.Errorf("leave %s: revoke lease: %w", r.Member().Key(), err)
	}
	return nil
}

// Done is closed when the registration ends: after Leave, when Join's ctx is
// done, or when the lease lapses (then the member is gone from etcd and must
// Join again to come back).
func (r *Registration) Done() <-chan struct{} { return r.done }

// Member returns the registered member.
func (r *Registration) Member() Member {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.member.clone()
}

// Lease is the registration's etcd lease, for attaching related keys.
func (r *Registration) Lease() clientv3.LeaseID { return r.lease }

// Update replaces the member's Meta. It fails with ErrLeaseLost once the
// registration has ended.
func (r *Registration) Update(ctx context.Context, meta map[string]string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.left || r.ended() {
		return fmt.Errorf("update %s: %w", r.member.Key(), ErrLeaseLost)
	}
	m := r.member
	m.Meta = meta
	m = m.clone()
	value, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("encode member %s: %w", m.ID, err)
	}
	if _, err := r.cli.Put(ctx, m.Key(), string(value), clientv3.WithLease(r.lease)); err != nil {
		if errors.Is(err, rpctypes.ErrLeaseNotFound) {
			return fmt.Errorf("update %s: %w", m.Key(), ErrLeaseLost)
		}
		return fmt.Errorf("update %s: %w", m.Key(), err)
	}
	r.member = m
	return nil
}

func (r *Registration) ended() bool {
	select {
	case <-r.done:
		return true
	default:
		return false
	}
}

// revoke deletes the lease and so the key, bounded by the TTL.
func (r *Registration) revoke() {
	ctx, cancel := context.WithTimeout(context.Background(), r.ttl)
	defer cancel()
	if _, err := r.cli.Revoke(ctx, r.lease); err != nil && !errors.Is(err, rpctypes.ErrLeaseNotFound) {
		r.logger.Debug("revoke membership lease", "err", err)
	}
}

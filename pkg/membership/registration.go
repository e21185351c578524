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
	ttl    time.Duration
	logger *slog.Logger
	cancel context.CancelFunc // stops the keepalive
	done   chan struct{}

	// mu serialises the writes of the member (Update, joining again).
	mu     sync.Mutex
	member Member
	lease  clientv3.LeaseID
	left   bool
}

// Join registers m under a lease of ttl (rounded up to whole seconds; 0 means
// DefaultTTL) and keeps the lease alive in the background (KeepLease). Should
// the lease be lost all the same (etcd let it lapse), the member joins again
// under a new lease at once: a live process stays a member. The registration
// lasts until Leave, or until ctx is done, which leaves as well; Done is
// closed then.
func Join(ctx context.Context, cli *clientv3.Client, m Member, ttl time.Duration, logger *slog.Logger) (*Registration, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	secs := ttlSeconds(ttl)
	r := &Registration{
		cli: cli, ttl: time.Duration(secs) * time.Second,
		logger: logger.With("service", m.Service, "member", m.ID),
		done:   make(chan struct{}), member: m.clone(),
	}
	since := time.Now()
	if err := r.put(ctx); err != nil {
		return nil, err
	}
	kaCtx, cancel := context.WithCancel(ctx)
	r.cancel = cancel
	go r.keepAlive(kaCtx, since)
	r.logger.Debug("joined", "lease", int64(r.Lease()))
	return r, nil
}

// put writes the member under a new lease.
func (r *Registration) put(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	value, err := json.Marshal(r.member)
	if err != nil {
		return fmt.Errorf("encode member %s: %w", r.member.ID, err)
	}
	grant, err := r.cli.Grant(ctx, int64(r.ttl/time.Second))
	if err != nil {
		return fmt.Errorf("grant membership lease: %w", err)
	}
	if _, err := r.cli.Put(ctx, r.member.Key(), string(value), clientv3.WithLease(grant.ID)); err != nil {
		r.revokeLease(grant.ID)
		return fmt.Errorf("register member %s: %w", r.member.Key(), err)
	}
	r.lease = grant.ID
	return nil
}

// keepAlive keeps the lease alive, joins again when it is lost, and
// closes done when the registration ends.
func (r *Registration) keepAlive(ctx context.Context, since time.Time) {
	defer close(r.done)
	delay := 100 * time.Millisecond
	for {
		err := KeepLease(ctx, r.cli, r.Lease(), r.ttl, since, func(unsure bool) {
			if unsure {
				r.logger.Warn("membership lease renewals unanswered for a whole TTL; still renewing")
			}
		})
		if ctx.Err() != nil {
			// Left, or the parent context ended: make sure the key goes now.
			r.revokeLease(r.Lease())
			return
		}
		r.logger.Warn("membership lease lost; joining again", "err", err)
		for {
			since = time.Now()
			if err = r.put(ctx); err == nil {
				break
			}
			if ctx.Err() != nil {
				return
			}
			r.logger.Warn("join again", "err", err)
			select {
			case <-time.After(delay):
			case <-ctx.Done():
				return
			}
			delay = min(2*delay, r.ttl)
		}
		delay = 100 * time.Millisecond
		r.logger.Info("joined again", "lease", int64(r.Lease()))
	}
}

// Leave removes the member at once by revoking its lease and stops the
// keepalive. Leaving twice is not an error.
func (r *Registration) Leave(ctx context.Context) error {
	r.mu.Lock()
	r.left = true
	lease := r.lease
	r.mu.Unlock()
	r.cancel()
	_, err := r.cli.Revoke(ctx, lease)
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

// Done is closed when the registration ends: after Leave, or when Join's
// ctx is done.
func (r *Registration) Done() <-chan struct{} { return r.done }

// Member returns the registered member.
func (r *Registration) Member() Member {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.member.clone()
}

// Lease is the registration's current etcd lease, for attaching related
// keys; it changes when the member joins again.
func (r *Registration) Lease() clientv3.LeaseID {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lease
}

// Update replaces the member's Meta. It fails with ErrLeaseLost once the
// registration has ended; while the member is joining again it only
// records the Meta, which the new registration writes.
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
	if _, err := r.cli.Put(ctx, m.Key(), string(value), clientv3.WithLease(r.lease)); err != nil &&
		!errors.Is(err, rpctypes.ErrLeaseNotFound) {
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

// revokeLease deletes a lease and so its key, bounded by the TTL.
func (r *Registration) revokeLease(id clientv3.LeaseID) {
	ctx, cancel := context.WithTimeout(context.Background(), r.ttl)
	defer cancel()
	if _, err := r.cli.Revoke(ctx, id); err != nil && !errors.Is(err, rpctypes.ErrLeaseNotFound) {
		r.logger.Debug("revoke membership lease", "err", err)
	}
}

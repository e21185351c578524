package membership

import (
	"context"
	"errors"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// maxRenewalsInFlight bounds the renewals waiting for etcd's answer.
const maxRenewalsInFlight = 4

// maxRenewalInterval bounds the time between renewals of a long lease:
// a lost lease is seen within it.
const maxRenewalInterval = time.Second

// KeepLease keeps lease id of ttl alive until ctx ends (it returns
// ctx's error) or etcd says the lease is gone (ErrLeaseLost): it was
// revoked, or it lapsed while no renewal reached etcd.
//
// It renews more often and more patiently than etcd's client KeepAlive,
// which sends a renewal a third of a TTL after each answer and gives the
// lease up (closing its channel) when no answer came within a TTL of the
// previous one, though etcd may still hold the lease: on a loaded machine
// one slow answer lost a healthy lease. KeepLease sends a renewal every
// fifth of a TTL (every second at most) without waiting for the answers
// before (up to maxRenewalsInFlight at a time), and only etcd's own answer
// ends it.
//
// Each answered renewal proves that etcd held the lease until at least a
// TTL after the renewal was sent. When that proof runs out (no renewal
// sent within the last TTL was answered, counted from since for the
// grant), etcd may have let the lease lapse unseen: unsure(true) is
// called then, and unsure(false) once a renewal is answered again. A
// holder that must never act on a lease it may have lost (a node agent
// fencing its workers) acts on unsure(true); it is never later than the
// lapse etcd could have seen.
func KeepLease(ctx context.Context, lc clientv3.Lease, id clientv3.LeaseID, ttl time.Duration, since time.Time,
	unsure func(bool)) error {
	if unsure == nil {
		unsure = func(bool) {}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	every := min(max(ttl/5, 10*time.Millisecond), maxRenewalInterval)
	type answer struct {
		sent time.Time
		err  error
	}
	answers := make(chan answer, maxRenewalsInFlight)
	inFlight := 0
	renew := func() {
		inFlight++
		sent := time.Now()
		go func() {
			rctx, rcancel := context.WithTimeout(ctx, ttl)
			defer rcancel()
			_, err := lc.KeepAliveOnce(rctx, id)
			answers <- answer{sent, err}
		}()
	}
	proven := since
	proof := time.NewTimer(time.Until(proven.Add(ttl)))
	defer proof.Stop()
	tick := time.NewTicker(every)
	defer tick.Stop()
	doubt := false
	renew()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
			if inFlight < maxRenewalsInFlight {
				renew()
			}
		case a := <-answers:
			inFlight--
			switch {
			case a.err == nil:
				if a.sent.After(proven) {
					proven = a.sent
					proof.Reset(time.Until(proven.Add(ttl)))
				}
				if doubt && time.Now().Before(proven.Add(ttl)) {
					doubt = false
					unsure(false)
				}
			case errors.Is(a.err, rpctypes.ErrLeaseNotFound):
				return ErrLeaseLost
			}
			// Any other error (a timeout, etcd unreachable) is retried
			// at the next tick.
		case <-proof.C:
			if !doubt && !time.Now().Before(proven.Add(ttl)) {
				doubt = true
				unsure(true)
			}
		}
	}
}

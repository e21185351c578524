package testenv

import (
	"context"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// SlowLease is an etcd lease client whose renewals (KeepAliveOnce) are
// as slow as a test says: each reaches etcd at once but its answer comes
// a delay later; while answers are held they wait; while renewals are cut
// they never reach etcd. Put it in a client's Lease field.
type SlowLease struct {
	clientv3.Lease
	mu       sync.Mutex
	delay    time.Duration
	flowing  chan struct{} // closed while answers flow
	cut      bool
	renewals int
}

// NewSlowLease wraps l, at first as fast as l.
func NewSlowLease(l clientv3.Lease) *SlowLease {
	s := &SlowLease{Lease: l, flowing: make(chan struct{})}
	close(s.flowing)
	return s
}

// Set makes each answer come delay late, holds the answers, or cuts the
// renewals off.
func (s *SlowLease) Set(delay time.Duration, hold, cut bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.delay, s.cut = delay, cut
	select {
	case <-s.flowing:
		if hold {
			s.flowing = make(chan struct{})
		}
	default:
		if !hold {
			close(s.flowing)
		}
	}
}

// Renewals counts the renewals that reached etcd.
func (s *SlowLease) Renewals() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.renewals
}

// KeepAliveOnce renews the lease as Set says.
func (s *SlowLease) KeepAliveOnce(ctx context.Context, id clientv3.LeaseID) (*clientv3.LeaseKeepAliveResponse, error) {
	s.mu.Lock()
	delay, flowing, cut := s.delay, s.flowing, s.cut
	s.mu.Unlock()
	if cut {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	resp, err := s.Lease.KeepAliveOnce(ctx, id)
	s.mu.Lock()
	s.renewals++
	s.mu.Unlock()
	t := time.NewTimer(delay)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	select {
	case <-flowing:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return resp, err
}

package iam

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
)

func TestLimitsPerIdentity(t *testing.T) {
	now := time.Unix(1000, 0)
	l := NewLimits(2, 3, func() time.Time { return now })
	for i := range 3 {
		ok, _ := l.Allow("alice")
		require.True(t, ok, "call %d of the burst", i+1)
	}
	ok, wait := l.Allow("alice")
	require.False(t, ok, "the fourth at once is over the burst")
	require.Equal(t, 500*time.Millisecond, wait, "2 a second: the next in half a second")
	ok, _ = l.Allow("bob")
	require.True(t, ok, "another identity has a bucket of its own")

	now = now.Add(500 * time.Millisecond)
	ok, _ = l.Allow("alice")
	require.True(t, ok, "half a second later one more")
	ok, _ = l.Allow("alice")
	require.False(t, ok)

	st := l.refusal("alice", wait)
	require.Equal(t, codes.ResourceExhausted, st.Code())
	require.Equal(t, "rate limit: alice may make 2 calls a second, 3 at once; retry in 500ms", st.Message())
}

func TestLimitsDefaultsAndOff(t *testing.T) {
	require.Nil(t, NewLimits(0, 10, nil), "0 calls a second is no limit")
	var off *Limits
	ok, _ := off.Allow("anyone")
	require.True(t, ok)
	require.Equal(t, 3, NewLimits(2.5, 0, nil).burst, "burst 0: one second's worth, rounded up")
	require.Equal(t, 1, NewLimits(0.1, 0, nil).burst, "at least 1")
}

func TestLimitsForgetIdleIdentities(t *testing.T) {
	now := time.Unix(1000, 0)
	l := NewLimits(1, 1, func() time.Time { return now })
	l.Allow("alice")
	now = now.Add(limitsIdle + time.Second)
	l.Allow("bob")
	l.mu.Lock()
	defer l.mu.Unlock()
	require.NotContains(t, l.buckets, "alice")
	require.Contains(t, l.buckets, "bob")
}

func TestGuardCountsCallersNotTheMesh(t *testing.T) {
	g := NewGuard(NewAuthority("", nil, nil, nil), nil, nil)
	now := time.Unix(1000, 0)
	g.SetLimits(NewLimits(1, 1, func() time.Time { return now }))
	alice := &Caller{Principal: &Principal{Identity: "alice"}}
	st, _ := g.overLimit(alice)
	require.Nil(t, st)
	st, wait := g.overLimit(alice)
	require.NotNil(t, st)
	require.Equal(t, time.Second, wait)
	// The mesh, and a call the mesh forwards for alice (counted where it
	// came in), are not counted.
	for range 5 {
		st, _ = g.overLimit(&Caller{Principal: System})
		require.Nil(t, st)
		st, _ = g.overLimit(&Caller{Principal: alice.Principal, forwarded: true})
		require.Nil(t, st)
	}
	st, _ = g.overLimit(&Caller{})
	require.Nil(t, st, "without --auth there is no identity to count")
}

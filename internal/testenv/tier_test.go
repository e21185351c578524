package testenv

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// In the unit tier every start of a server fails its test before the
// server starts; in the integration tier the guard lets the test through.
func TestUnitTierRefusesServers(t *testing.T) {
	t.Parallel()
	for name, start := range map[string]func(testing.TB){
		"guard": RequireIntegration,
		"etcd":  func(tb testing.TB) { Etcd(tb) },
		"nats":  func(tb testing.TB) { NATS(tb) },
	} {
		t.Run(name, func(t *testing.T) {
			if Integration {
				if name != "guard" {
					t.Skip("the servers themselves start in TestServersStart")
				}
				_, refused := CatchFatal(t, start)
				require.False(t, refused, "the integration tier refused a server")
				return
			}
			msg, refused := CatchFatal(t, start)
			require.True(t, refused, "a unit-tier test started a server")
			require.Contains(t, msg, t.Name())
			require.Contains(t, msg, "//go:build integration")
		})
	}
}

// A benchmark may start servers in any build: make bench runs without
// the tag.
func TestBenchmarksPassTheGuard(t *testing.T) {
	t.Parallel()
	passed := false
	testing.Benchmark(func(b *testing.B) {
		RequireIntegration(b)
		passed = true
	})
	require.True(t, passed)
}

func TestCatchFatal(t *testing.T) {
	t.Parallel()
	msg, fataled := CatchFatal(t, func(tb testing.TB) { tb.Fatalf("no %s", "luck") })
	require.True(t, fataled)
	require.Equal(t, "no luck", msg)
	msg, fataled = CatchFatal(t, func(tb testing.TB) { tb.Fatal("no ", "luck") })
	require.True(t, fataled)
	require.Equal(t, "no luck", msg)
	_, fataled = CatchFatal(t, func(testing.TB) {})
	require.False(t, fataled)
}

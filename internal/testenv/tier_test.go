package testenv

import (
	"fmt"
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"
)

// fatalTB records a Fatalf and ends its goroutine there, as testing.T does.
type fatalTB struct {
	testing.TB
	msg string
}

func (f *fatalTB) Helper()      {}
func (f *fatalTB) Name() string { return "TestMisplaced" }

func (f *fatalTB) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// run calls start with a fatalTB and says whether it returned.
func run(t *testing.T, start func(testing.TB)) (*fatalTB, bool) {
	tb := &fatalTB{TB: t}
	returned := make(chan bool, 1)
	go func() {
		ok := false
		defer func() { returned <- ok }()
		start(tb)
		ok = true
	}()
	return tb, <-returned
}

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
				_, returned := run(t, start)
				require.True(t, returned, "the integration tier refused a server")
				return
			}
			tb, returned := run(t, start)
			require.False(t, returned, "a unit-tier test started a server")
			require.Contains(t, tb.msg, "TestMisplaced")
			require.Contains(t, tb.msg, "//go:build integration")
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

package harness

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/bmaas/bmaas/internal/testenv"
)

// In the unit tier every start of the harness fails its test before
// anything is built or started.
func TestUnitTierRefusesClusters(t *testing.T) {
	t.Parallel()
	if testenv.Integration {
		t.Skip("the integration tier starts clusters in tests/")
	}
	for name, start := range map[string]func(testing.TB){
		"cluster":       func(tb testing.TB) { Start(tb) },
		"config":        func(tb testing.TB) { StartConfig(tb, DefaultConfig(tb)) },
		"binary":        func(tb testing.TB) { Binary(tb) },
		"process":       func(tb testing.TB) { StartProcess(tb, "up") },
		"external etcd": func(tb testing.TB) { ExternalEtcd(tb) },
		"external nats": func(tb testing.TB) { ExternalNATS(tb) },
	} {
		t.Run(name, func(t *testing.T) {
			msg, refused := testenv.CatchFatal(t, start)
			require.True(t, refused, "a unit-tier test started %s", name)
			require.Contains(t, msg, "//go:build integration")
		})
	}
	require.Empty(t, binPath, "the bmaas binary was built")
}

package gateway

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/durationpb"

	gatewayv1 "github.com/bmaas/bmaas/api/bmaas/gateway/v1"
)

func TestTokenQuotaWindow(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	q := newTokenQuota(func(p string) int64 { return map[string]int64{"default": 100}[p] }, func() time.Time { return now })
	require.NoError(t, q.check("default"))
	q.add("default", 60)
	require.NoError(t, q.check("default"), "60 of 100")
	now = now.Add(30 * time.Second)
	q.add("default", 50)
	err := q.check("default")
	require.EqualError(t, err, "over quota: project default used 110 of its 100 language-model tokens a minute")
	require.NoError(t, q.check("vision"), "no quota, no limit")
	now = now.Add(31 * time.Second) // the first 60 leave the minute
	require.NoError(t, q.check("default"), "50 of 100 in the last minute")
	now = now.Add(time.Hour)
	q.add("default", 99)
	require.NoError(t, q.check("default"), "an old slot is not counted again")
	var nilQuota *tokenQuota
	require.NoError(t, nilQuota.check("default"))
	nilQuota.add("default", 5)
}

// A project's tokens a minute count across gateways: each adds what the
// others' load reports say they used; a gateway that stops reporting
// stops counting once its report is stale.
func TestTokenQuotaCountsEveryGateway(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	clock := func() time.Time { return now }
	limit := func(p string) int64 { return map[string]int64{"vision": 100}[p] }
	a, b := newTokenQuota(limit, clock), newTokenQuota(limit, clock)
	bLoads := newLoads("b", time.Second, clock)
	b.others = bLoads.tokens
	a.add("vision", 90)
	b.add("vision", 20)
	require.NoError(t, b.check("vision"), "b alone has used 20")
	bLoads.add(&gatewayv1.GatewayLoad{Gateway: "a", Period: durationpb.New(time.Second), Tokens: a.report()})
	require.EqualError(t, b.check("vision"), "over quota: project vision used 110 of its 100 language-model tokens a minute")
	now = now.Add(4 * time.Second) // a's report is three periods old
	require.NoError(t, b.check("vision"))
	require.Equal(t, []*gatewayv1.ProjectTokens{{Project: "vision", Tokens: 20}}, b.report(), "b reports its own")
}

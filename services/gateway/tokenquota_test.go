package gateway

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
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

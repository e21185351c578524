package gateway

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	gatewayv1 "github.com/bmaas/bmaas/api/bmaas/gateway/v1"
)

func blocksOf(t *testing.T, body string) []uint64 {
	t.Helper()
	var fields map[string]json.RawMessage
	require.NoError(t, json.Unmarshal([]byte(body), &fields))
	return promptBlocks(fields)
}

// Prompts that share a prefix share the hashes of its whole blocks, and
// differ from the first block that differs.
func TestPromptBlocks(t *testing.T) {
	system := strings.Repeat("You are Sherlock Holmes. ", 12) // 300 bytes
	chat := func(user string) string {
		b, _ := json.Marshal(map[string]any{"model": "m", "messages": []map[string]string{
			{"role": "system", "content": system}, {"role": "user", "content": user}}})
		return string(b)
	}
	a, b := blocksOf(t, chat("Who stole the coronet?")), blocksOf(t, chat("What of the speckled band?"))
	require.Len(t, a, (len("system")+1+len(system)+1+len("user")+1+len("Who stole the coronet?")+1)/prefixBlock)
	shared := (len("system") + 1 + len(system) + 1) / prefixBlock
	require.Equal(t, a[:shared], b[:shared])
	require.NotEqual(t, a[len(a)-1], b[len(b)-1])

	p := blocksOf(t, `{"model":"m","prompt":"`+strings.Repeat("x", 130)+`"}`)
	require.Len(t, p, 2)
	require.Equal(t, p, blocksOf(t, `{"model":"m","prompt":["`+strings.Repeat("x", 130)+`","other"]}`))
	require.Empty(t, blocksOf(t, `{"model":"m","prompt":"short"}`))
	require.NotNil(t, blocksOf(t, `{"model":"m","prompt":"short"}`), "a prompt, too short for a block")
	require.Nil(t, blocksOf(t, `{"model":"m","input":"an embedding"}`))
}

func backends(n int) []*backend {
	var out []*backend
	for i := range n {
		out = append(out, &backend{key: string(rune('a' + i)), ep: &gatewayv1.Endpoint{Version: 1}})
	}
	return out
}

// A prompt goes where its longest prefix went, unless that replica is
// over the load bound; without a match, to the least loaded.
func TestByPrefix(t *testing.T) {
	st := newRoutingState()
	bs := backends(3)
	bs[0].inflight.Store(1)
	bs[2].inflight.Store(1)
	groupA := []uint64{1, 2, 3}
	first := st.byPrefix("m", bs, groupA)
	require.Equal(t, bs[1], first, "no match: the least loaded")
	first.inflight.Add(2)
	require.Equal(t, bs[1], st.byPrefix("m", bs, []uint64{1, 2, 3, 4}), "the replica that served the prefix, though busier")
	require.Equal(t, bs[1], st.byPrefix("m", bs, []uint64{1, 2, 9}), "a shorter shared prefix still matches")
	groupB := []uint64{7, 8}
	other := st.byPrefix("m", bs, groupB)
	require.NotEqual(t, bs[1], other, "another group goes to a less loaded replica")
	bs[1].inflight.Store(5) // over 2*1+2
	over := st.byPrefix("m", bs, groupA)
	require.NotEqual(t, bs[1], over, "the load bound wins over the prefix")
	require.Equal(t, over.key, st.prefixes["m"].owner[3], "the new owner is remembered")
}

func TestPrefixTableForgetsTheOldest(t *testing.T) {
	tbl := &prefixTable{owner: map[uint64]string{}}
	for h := range uint64(prefixEntries + 10) {
		tbl.put(h, "a")
	}
	require.Len(t, tbl.owner, prefixEntries)
	_, ok := tbl.owner[0]
	require.False(t, ok)
	_, ok = tbl.owner[prefixEntries+9]
	require.True(t, ok)
}

func TestLeastLoaded(t *testing.T) {
	bs := backends(3)
	bs[0].inflight.Store(3)
	bs[1].inflight.Store(1)
	bs[2].inflight.Store(2)
	require.Equal(t, bs[1], leastLoaded(bs))
	bs[2].inflight.Store(1)
	seen := map[*backend]bool{}
	for range 200 {
		seen[leastLoaded(bs)] = true
	}
	require.Len(t, seen, 2, "ties broken at random")
}

func TestNormalizeChecksRouting(t *testing.T) {
	s := &Service{cfg: DefaultConfig()}
	require.NoError(t, s.normalize(t.Context(), &gatewayv1.Deployment{Model: "m@1", Routing: gatewayv1.Routing_ROUTING_PREFIX}))
	err := s.normalize(t.Context(), &gatewayv1.Deployment{Model: "m@1", Routing: 9})
	require.ErrorContains(t, err, "deployment.routing: unknown value 9")
}

package gateway

import (
	"context"
	"encoding/json"
	"hash/fnv"
	"math/rand/v2"
	"sync"

	gatewayv1 "github.com/bmaas/bmaas/api/bmaas/gateway/v1"
)

// Routing among a deployment's ready replicas (Deployment.routing): the
// less loaded of two random replicas by default, each replica in turn, the
// least loaded, or by prompt prefix on the OpenAI routes.
//
// Prefix routing is in the spirit of llm-d's prefix-aware scheduler: the
// prompt is cut into blocks of prefixBlock bytes, each block hashed with
// all the blocks before it, and the gateway remembers which replica
// served each hash last (a bounded table per deployment). A request goes
// to the replica that served its longest prefix, so that replica's prefix
// cache likely holds the prefix's keys and values, unless that replica is
// busier than the bound allows: a replica is a candidate only while its
// requests in flight are at most twice the least loaded one's plus two.
// Without a match it goes to the least loaded candidate.
const (
	prefixBlock   = 64      // bytes of prompt per block
	prefixEntries = 1 << 15 // hashes remembered per deployment
)

// routingState is the gateway's memory for routing: the round-robin
// counters and the prefix tables, by deployment.
type routingState struct {
	mu       sync.Mutex
	next     map[string]uint64
	prefixes map[string]*prefixTable
}

func newRoutingState() *routingState {
	return &routingState{next: map[string]uint64{}, prefixes: map[string]*prefixTable{}}
}

// prefixTable maps a prefix hash to the replica (backend key) that served
// it last, forgetting the oldest hashes beyond its capacity.
type prefixTable struct {
	owner map[uint64]string
	ring  []uint64
	at    int
}

func (t *prefixTable) put(h uint64, key string) {
	if _, ok := t.owner[h]; !ok {
		if len(t.ring) < prefixEntries {
			t.ring = append(t.ring, h)
		} else {
			delete(t.owner, t.ring[t.at])
			t.ring[t.at] = h
			t.at = (t.at + 1) % prefixEntries
		}
	}
	t.owner[h] = key
}

// routing is the deployment's routing; UNSPECIFIED when it is unknown.
func (s *Service) routing(ctx context.Context, name string) gatewayv1.Routing {
	r := gatewayv1.Routing_ROUTING_UNSPECIFIED
	_ = s.depCache().View(ctx, deploymentKey(name), func(d *gatewayv1.Deployment) { r = d.GetRouting() })
	return r
}

// choose picks a replica of bs for a request (version v unless 0, not
// avoid, none of tried) by the deployment's routing; blocks are the
// prompt's prefix hashes on the OpenAI routes, nil elsewhere.
func (s *Service) choose(ctx context.Context, name string, bs []*backend, v, avoid int64, tried []*backend, blocks []uint64) *backend {
	if len(bs) < 2 {
		return pick(bs, v, avoid, tried)
	}
	r := s.routing(ctx, name)
	if r == gatewayv1.Routing_ROUTING_UNSPECIFIED {
		if blocks == nil {
			return pick(bs, v, avoid, tried)
		}
		r = gatewayv1.Routing_ROUTING_PREFIX
	}
	var cands []*backend
	for _, c := range bs {
		if (v == 0 || c.ep.Version == v) && (avoid == 0 || c.ep.Version != avoid) && !contains(tried, c) {
			cands = append(cands, c)
		}
	}
	if len(cands) == 0 {
		return nil
	}
	st := s.route
	switch r {
	case gatewayv1.Routing_ROUTING_ROUND_ROBIN:
		st.mu.Lock()
		i := st.next[name]
		st.next[name] = i + 1
		st.mu.Unlock()
		return cands[i%uint64(len(cands))]
	case gatewayv1.Routing_ROUTING_PREFIX:
		if len(blocks) > 0 {
			return st.byPrefix(name, cands, blocks)
		}
	}
	return leastLoaded(cands)
}

// leastLoaded is the candidate with the fewest requests in flight, ties
// broken at random.
func leastLoaded(cands []*backend) *backend {
	var best *backend
	n := 0
	for _, c := range cands {
		switch {
		case best == nil || c.inflight.Load() < best.inflight.Load():
			best, n = c, 1
		case c.inflight.Load() == best.inflight.Load():
			n++
			if rand.IntN(n) == 0 {
				best = c
			}
		}
	}
	return best
}

// byPrefix picks the candidate within the load bound that served the
// longest prefix of blocks, else the least loaded, and remembers the
// choice for every block.
func (st *routingState) byPrefix(name string, cands []*backend, blocks []uint64) *backend {
	least := leastLoaded(cands)
	bound := 2*least.inflight.Load() + 2
	st.mu.Lock()
	defer st.mu.Unlock()
	t := st.prefixes[name]
	if t == nil {
		t = &prefixTable{owner: map[uint64]string{}}
		st.prefixes[name] = t
	}
	chosen := least
	func() {
		for i := len(blocks) - 1; i >= 0; i-- {
			key, ok := t.owner[blocks[i]]
			if !ok {
				continue
			}
			for _, c := range cands {
				if c.key == key && c.inflight.Load() <= bound {
					chosen = c
					return
				}
			}
		}
	}()
	for _, h := range blocks {
		t.put(h, chosen.key)
	}
	return chosen
}

// forget drops a deleted deployment's routing memory.
func (st *routingState) forget(name string) {
	st.mu.Lock()
	delete(st.next, name)
	delete(st.prefixes, name)
	st.mu.Unlock()
}

// promptBlocks are the prefix hashes of an OpenAI request's prompt: its
// messages' roles and contents in order (chat), or its prompt (a string,
// or the first of a list); nil when it has neither.
func promptBlocks(fields map[string]json.RawMessage) []uint64 {
	var text []byte
	if raw, ok := fields["messages"]; ok {
		var msgs []struct {
			Role    string          `json:"role"`
			Content json.RawMessage `json:"content"`
		}
		if json.Unmarshal(raw, &msgs) != nil {
			return nil
		}
		for _, m := range msgs {
			text = append(text, m.Role...)
			text = append(text, 0)
			var s string
			if json.Unmarshal(m.Content, &s) == nil {
				text = append(text, s...)
			} else {
				text = append(text, m.Content...) // content parts: as sent
			}
			text = append(text, 0)
		}
	} else if raw, ok := fields["prompt"]; ok {
		var s string
		if json.Unmarshal(raw, &s) != nil {
			var list []string
			if json.Unmarshal(raw, &list) != nil || len(list) == 0 {
				return nil
			}
			s = list[0]
		}
		text = []byte(s)
	} else {
		return nil
	}
	blocks := make([]uint64, 0, len(text)/prefixBlock)
	h := fnv.New64a()
	for i := 0; i+prefixBlock <= len(text); i += prefixBlock {
		_, _ = h.Write(text[i : i+prefixBlock]) // the hash runs on: each block's covers all before it
		blocks = append(blocks, h.Sum64())
	}
	return blocks
}

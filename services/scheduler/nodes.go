package scheduler

import (
	"context"
	"errors"
	"fmt"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/protobuf/proto"

	schedulerv1 "github.com/bmaas/bmaas/api/bmaas/scheduler/v1"
	"github.com/bmaas/bmaas/pkg/apierr"
	"github.com/bmaas/bmaas/pkg/store"
	"github.com/bmaas/bmaas/services/scheduler/schedkeys"
)

// ListNodes pages through the registered nodes, with what their
// assignments use filled in.
func (s *Scheduler) ListNodes(ctx context.Context, req *schedulerv1.ListNodesRequest) (*schedulerv1.ListNodesResponse, error) {
	size, err := store.PageSize("page_size", req.GetPageSize())
	if err != nil {
		return nil, err
	}
	items, next, err := store.List(ctx, s.st, schedkeys.NodesPrefix, size, req.GetPageToken(),
		func() *schedulerv1.Node { return &schedulerv1.Node{} }, nil)
	if err != nil {
		return nil, err
	}
	use, err := s.allocated(ctx, schedkeys.AssignmentsPrefix)
	if err != nil {
		return nil, err
	}
	out := &schedulerv1.ListNodesResponse{NextPageToken: next, Nodes: make([]*schedulerv1.Node, len(items))}
	for i, it := range items {
		fill(it.Msg, use[it.Msg.Name])
		out.Nodes[i] = it.Msg
	}
	return out, nil
}

// GetNode returns one node.
func (s *Scheduler) GetNode(ctx context.Context, name string) (*schedulerv1.Node, error) {
	if name == "" || strings.Contains(name, "/") {
		return nil, apierr.Invalid("name", "not a node name: %q", name)
	}
	var n schedulerv1.Node
	if _, err := s.st.Get(ctx, schedkeys.Node(name), &n); errors.Is(err, store.ErrNotFound) {
		return nil, apierr.NotFound("node", name)
	} else if err != nil {
		return nil, err
	}
	use, err := s.allocated(ctx, schedkeys.AssignmentsOf(name))
	if err != nil {
		return nil, err
	}
	fill(&n, use[name])
	return &n, nil
}

// usage sums what assignments hold on one node.
type usage struct {
	cpu, mem int64
	gpus     int32
	// whole GPUs by index, and the memory shares hold per GPU index.
	whole  map[int32]bool
	shares map[int32]int64
}

// fill sets what n's assignments hold: CPU, memory, whole GPUs, and per
// GPU the memory reserved (all of it for a whole GPU, else the shares).
func fill(n *schedulerv1.Node, u usage) {
	n.AllocatedCpuMillis, n.AllocatedMemoryBytes, n.AllocatedGpus = u.cpu, u.mem, u.gpus
	for _, g := range n.Gpus {
		g.AllocatedMemoryBytes = u.shares[g.Index]
		if u.whole[g.Index] {
			g.AllocatedMemoryBytes = g.MemoryBytes
		}
	}
}

// add counts one assignment in u.
func (u *usage) add(a *schedulerv1.Assignment) {
	r := a.GetSpec().GetResources()
	u.cpu += r.GetCpuMillis()
	u.mem += r.GetMemoryBytes()
	share := shareOf(r)
	for _, idx := range a.GpuIndices {
		if share > 0 {
			if u.shares == nil {
				u.shares = map[int32]int64{}
			}
			u.shares[idx] += share
			continue
		}
		if u.whole == nil {
			u.whole = map[int32]bool{}
		}
		u.whole[idx] = true
		u.gpus++
	}
}

// allocated reads the assignments under prefix and sums them per node.
func (s *Scheduler) allocated(ctx context.Context, prefix string) (map[string]usage, error) {
	resp, err := s.cli.Get(ctx, prefix, clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("etcd list %s: %w", prefix, err)
	}
	out := map[string]usage{}
	for _, kv := range resp.Kvs {
		var a schedulerv1.Assignment
		if err := proto.Unmarshal(kv.Value, &a); err != nil {
			return nil, fmt.Errorf("decode %s: %w", kv.Key, err)
		}
		u := out[a.Node]
		u.add(&a)
		out[a.Node] = u
	}
	return out, nil
}

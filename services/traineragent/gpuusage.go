package traineragent

import (
	"context"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/protobuf/proto"

	schedulerv1 "github.com/bmaas/bmaas/api/bmaas/scheduler/v1"
	"github.com/bmaas/bmaas/pkg/gpu"
	"github.com/bmaas/bmaas/services/scheduler/schedkeys"
)

// gpuUsageStep is how much a GPU's reading must move before the node
// record is written again: a percent of utilisation, or this fraction of
// its memory, so that a busy GPU's jitter does not rewrite the node at
// every heartbeat.
const (
	gpuUtilStep   = 5
	gpuMemoryStep = 0.01
)

// fillGPUUsage sets each GPU's memory in use and utilisation from src (a
// GPU that cannot be read keeps zeros; fake GPUs read zero).
func fillGPUUsage(src gpu.Source, gpus []*schedulerv1.Gpu) {
	if src == nil {
		return
	}
	for _, g := range gpus {
		u, err := src.Usage(int(g.Index))
		if err != nil {
			continue
		}
		g.UsedMemoryBytes = u.MemoryUsedBytes
		g.UtilizationPercent = int32(u.Utilization*100 + 0.5)
	}
}

// gpuUsageMoved reports whether now differs enough from was (the same
// GPUs, in order) to be written.
func gpuUsageMoved(was, now []*schedulerv1.Gpu) bool {
	if len(was) != len(now) {
		return true
	}
	for i, g := range now {
		w := was[i]
		if d := g.UtilizationPercent - w.UtilizationPercent; d >= gpuUtilStep || d <= -gpuUtilStep {
			return true
		}
		step := int64(gpuMemoryStep * float64(g.MemoryBytes))
		if d := g.UsedMemoryBytes - w.UsedMemoryBytes; d > step || d < -step || (d != 0 && g.UsedMemoryBytes == 0) {
			return true
		}
	}
	return false
}

// reportGPUUsage reads the GPUs at every heartbeat (a fifth of the lease
// TTL) and, when a reading moved, writes the node record again with it,
// under the lease the record holds and only if the record is unchanged
// since it was read (a new registration wins).
func (s *Service) reportGPUUsage(ctx context.Context) {
	if s.src == nil || len(s.gpus) == 0 {
		return
	}
	t := time.NewTicker(max(s.cfg.leaseTTL()/5, 100*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := s.writeGPUUsage(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("report gpu usage", "err", err)
		}
	}
}

// writeGPUUsage is one heartbeat's reading and write.
func (s *Service) writeGPUUsage(ctx context.Context) error {
	key := schedkeys.Node(s.cfg.Node)
	resp, err := s.cli.Get(ctx, key)
	if err != nil || len(resp.Kvs) == 0 {
		return err // not registered (yet): nothing to update
	}
	kv := resp.Kvs[0]
	var n schedulerv1.Node
	if err := proto.Unmarshal(kv.Value, &n); err != nil {
		return err
	}
	was := make([]*schedulerv1.Gpu, len(n.Gpus))
	for i, g := range n.Gpus {
		was[i] = proto.Clone(g).(*schedulerv1.Gpu)
	}
	fillGPUUsage(s.src, n.Gpus)
	if !gpuUsageMoved(was, n.Gpus) {
		return nil
	}
	b, err := proto.Marshal(&n)
	if err != nil {
		return err
	}
	_, err = s.cli.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(key), "=", kv.ModRevision)).
		Then(clientv3.OpPut(key, string(b), clientv3.WithLease(clientv3.LeaseID(kv.Lease)))).Commit()
	return err
}

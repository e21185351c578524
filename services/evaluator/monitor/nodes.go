package monitor

import (
	"context"
	"encoding/hex"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	evaluatorv1 "github.com/bmaas/bmaas/api/bmaas/evaluator/v1"
	schedulerv1 "github.com/bmaas/bmaas/api/bmaas/scheduler/v1"
	"github.com/bmaas/bmaas/pkg/apierr"
	"github.com/bmaas/bmaas/pkg/events"
)

// The nodes' use over time: the leader records every node's capacity and
// allocation (and its GPUs' use) every evaluator.node-usage-interval, one
// message per node on bmaas.nodeusage.<hex of the node's name> in the
// stream BMAAS_NODE_USAGE, kept as long as the windows.
const (
	NodeUsageStream  = "BMAAS_NODE_USAGE"
	nodeUsageSubject = "bmaas.nodeusage."
)

func nodeSubject(node string) string { return nodeUsageSubject + hex.EncodeToString([]byte(node)) }

// nodeStream creates the stream (once Run has started).
func (m *Monitor) nodeStream(ctx context.Context) (jetstream.Stream, error) {
	return m.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: NodeUsageStream,
		Description: "bmaas nodes' capacity and use over time", Subjects: []string{nodeUsageSubject + ">"},
		Storage: jetstream.FileStorage, MaxAge: m.cfg.Retention, Discard: jetstream.DiscardOld})
}

// RecordNodes stores one sample of each node, at now.
func (m *Monitor) RecordNodes(ctx context.Context, nodes []*schedulerv1.Node) error {
	select {
	case <-m.started:
	case <-ctx.Done():
		return ctx.Err()
	}
	now := timestamppb.New(m.now())
	for _, n := range nodes {
		u := &evaluatorv1.NodeUsage{Node: n.GetName(), Time: now, CpuMillis: n.GetCpuMillis(),
			AllocatedCpuMillis: n.GetAllocatedCpuMillis(), MemoryBytes: n.GetMemoryBytes(), AllocatedMemoryBytes: n.GetAllocatedMemoryBytes()}
		for _, g := range n.GetGpus() {
			u.Gpus = append(u.Gpus, &evaluatorv1.GpuUsage{Index: g.GetIndex(), MemoryBytes: g.GetMemoryBytes(),
				UsedMemoryBytes: g.GetUsedMemoryBytes(), AllocatedMemoryBytes: g.GetAllocatedMemoryBytes(), UtilizationPercent: g.GetUtilizationPercent()})
		}
		data, err := proto.Marshal(u)
		if err != nil {
			return err
		}
		if _, err := m.js.Publish(ctx, nodeSubject(n.GetName()), data); err != nil {
			return fmt.Errorf("record node %s: %w", n.GetName(), err)
		}
	}
	return nil
}

// ListNodeUsage reads the samples of one node (or all) from since, oldest
// first; the page token is the stream sequence to go on from.
func (m *Monitor) ListNodeUsage(ctx context.Context, req *evaluatorv1.ListNodeUsageRequest) (*evaluatorv1.ListNodeUsageResponse, error) {
	n := int(req.GetPageSize())
	switch {
	case n < 0 || n > 1000:
		return nil, apierr.Invalid("page_size", "must be within 0 and 1000, got %d", n)
	case n == 0:
		n = 100
	}
	subject := nodeUsageSubject + ">"
	if req.GetNode() != "" {
		subject = nodeSubject(req.GetNode())
	}
	since := m.now().Add(-time.Hour)
	if req.GetSince() != nil {
		since = req.GetSince().AsTime()
	}
	cfg := jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverByStartTimePolicy, OptStartTime: &since}
	if t := req.GetPageToken(); t != "" {
		seq, err := strconv.ParseUint(t, 10, 64)
		if err != nil || seq == 0 {
			return nil, apierr.Invalid("page_token", "not a token of this list")
		}
		cfg = jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: seq}
	}
	out := &evaluatorv1.ListNodeUsageResponse{}
	select {
	case <-m.started:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	err := events.ReadRange(ctx, m.js, NodeUsageStream, subject, cfg, func(data []byte, seq uint64) (bool, error) {
		if len(out.Samples) == n {
			out.NextPageToken = strconv.FormatUint(seq, 10)
			return false, nil
		}
		u := &evaluatorv1.NodeUsage{}
		if proto.Unmarshal(data, u) == nil {
			out.Samples = append(out.Samples, u)
		}
		return true, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

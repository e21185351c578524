package scheduler

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	schedulerv1 "github.com/bmaas/bmaas/api/bmaas/scheduler/v1"
	"github.com/bmaas/bmaas/internal/testenv"
	"github.com/bmaas/bmaas/pkg/events"
	"github.com/bmaas/bmaas/services/scheduler"
	"github.com/bmaas/bmaas/services/scheduler/schedkeys"
)

// BenchmarkPlacePersisted writes 5,000 nodes and 10,000 queued jobs into
// an embedded etcd, then starts a scheduler and times it from Run to the
// last binding committed: its election, loading the view, placement, and
// every job's SCHEDULED move with its assignments written in fenced etcd
// transactions of at most batch operations.
func BenchmarkPlacePersisted(b *testing.B) {
	for _, batch := range []int{64, 8} {
		b.Run(fmt.Sprintf("batch-%d", batch), func(b *testing.B) {
			var elapsed time.Duration
			for range b.N {
				elapsed += persistOnce(b, batch)
			}
			b.ReportMetric(float64(numJobs*b.N)/elapsed.Seconds(), "decisions/s")
			b.ReportMetric(0, "ns/op")
		})
	}
}

func persistOnce(b *testing.B, batch int) time.Duration {
	b.StopTimer()
	defer b.StartTimer()
	cli := testenv.NewEtcdClient(b, testenv.Etcd(b))
	bus, err := events.NewBus(b.Context(), testenv.NATSConn(b), events.Config{}, nil)
	if err != nil {
		b.Fatal(err)
	}
	ctx := b.Context()
	var ops []clientv3.Op
	put := func(key string, m proto.Message) {
		raw, err := proto.Marshal(m)
		if err != nil {
			b.Fatal(err)
		}
		ops = append(ops, clientv3.OpPut(key, string(raw)))
		if len(ops) == 128 {
			if _, err := cli.Txn(ctx).Then(ops...).Commit(); err != nil {
				b.Fatal(err)
			}
			ops = ops[:0]
		}
	}
	for _, n := range genNodes() {
		put(schedkeys.Node(n.Name), n)
	}
	now := time.Now()
	for i, s := range genJobs(1) {
		id := events.NewID()
		ts := timestamppb.New(now.Add(time.Duration(i)))
		put(schedkeys.Job(id), &schedulerv1.Job{Id: id, Spec: s, State: schedulerv1.JobState_JOB_STATE_QUEUED, Attempt: 1,
			CreateTime: ts, History: []*schedulerv1.JobTransition{{State: schedulerv1.JobState_JOB_STATE_QUEUED, Time: ts, Reason: "submitted"}}})
	}
	if _, err := cli.Txn(ctx).Then(ops...).Commit(); err != nil {
		b.Fatal(err)
	}

	cfg := scheduler.DefaultConfig()
	cfg.BatchOps = batch
	reg := prometheus.NewRegistry()
	svc, err := scheduler.New(cfg, scheduler.Deps{Etcd: cli, Bus: bus, Registerer: reg, Addr: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	b.StartTimer()
	start := time.Now()
	go func() {
		defer close(done)
		_ = svc.Run(rctx)
	}()
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for placements(b, reg) < numJobs {
		<-tick.C
		if time.Since(start) > 5*time.Minute {
			b.Fatal("placement did not finish")
		}
	}
	took := time.Since(start)
	b.StopTimer()
	resp, err := cli.Get(ctx, schedkeys.AssignmentsPrefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(resp.Count), "assignments")
	cancel()
	<-done
	return took
}

func placements(b *testing.B, reg *prometheus.Registry) int {
	mfs, err := reg.Gather()
	if err != nil {
		b.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "bmaas_scheduler_placements_total" {
			return int(mf.GetMetric()[0].GetCounter().GetValue())
		}
	}
	return 0
}

// Package jobs measures submit-to-RUNNING latency in `bmaas up` (the whole
// platform in one process) with free capacity.
//
//	go test -run '^$' -bench . ./bench/jobs/
package jobs

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"slices"
	"testing"
	"time"

	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
	schedulerv1 "github.com/bmaas/bmaas/api/bmaas/scheduler/v1"
	"github.com/bmaas/bmaas/tests/harness"
)

func BenchmarkSubmitToRunning(b *testing.B) {
	c := harness.Start(b)
	ctx := context.Background()
	data, err := os.ReadFile("../../examples/datasets/iris.csv")
	if err != nil {
		b.Fatal(err)
	}
	sum := sha256.Sum256(data)
	up, err := c.Registry.UploadDataset(ctx)
	if err != nil {
		b.Fatal(err)
	}
	_ = up.Send(&registryv1.UploadDatasetRequest{Payload: &registryv1.UploadDatasetRequest_Header{
		Header: &registryv1.UploadDatasetHeader{Name: "iris", Sha256: hex.EncodeToString(sum[:])}}})
	_ = up.Send(&registryv1.UploadDatasetRequest{Payload: &registryv1.UploadDatasetRequest_Chunk{Chunk: data}})
	if _, err := up.CloseAndRecv(); err != nil {
		b.Fatal(err)
	}
	if _, err := c.Registry.CreateModel(ctx, &registryv1.CreateModelRequest{Model: &registryv1.Model{Name: "iris"}}); err != nil {
		b.Fatal(err)
	}
	sc := schedulerv1.NewSchedulerServiceClient(c.Conn)
	spec := &schedulerv1.JobSpec{Model: "iris", Resources: &schedulerv1.Resources{CpuMillis: 100, MemoryBytes: 64 << 20},
		Runtime: &schedulerv1.JobSpec_Builtin{Builtin: &schedulerv1.BuiltinRuntime{Algorithm: "logistic", Dataset: "iris", TargetColumn: "target"}}}

	var lat []time.Duration
	for b.Loop() {
		start := time.Now()
		sub, err := sc.SubmitJob(ctx, &schedulerv1.SubmitJobRequest{Spec: spec})
		if err != nil {
			b.Fatal(err)
		}
		w, err := sc.WatchJob(ctx, &schedulerv1.WatchJobRequest{Id: sub.Job.Id})
		if err != nil {
			b.Fatal(err)
		}
		for {
			resp, err := w.Recv()
			if err != nil {
				b.Fatalf("watch ended before RUNNING: %v", err)
			}
			st := resp.Job.State
			if st == schedulerv1.JobState_JOB_STATE_RUNNING || st == schedulerv1.JobState_JOB_STATE_SUCCEEDED {
				// A job this short may finish before its RUNNING move is
				// watched; its history has the RUNNING time then.
				lat = append(lat, runningAt(resp.Job).Sub(start))
				break
			}
			if st == schedulerv1.JobState_JOB_STATE_FAILED {
				b.Fatalf("job failed: %s", resp.Job.Reason)
			}
		}
	}
	slices.Sort(lat)
	p := func(q float64) time.Duration { return lat[min(len(lat)-1, int(q*float64(len(lat))))] }
	b.ReportMetric(float64(p(0.5).Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(p(0.99).Microseconds())/1000, "p99-ms")
}

// runningAt is when the job moved to RUNNING (by its history), or now.
func runningAt(j *schedulerv1.Job) time.Time {
	for _, h := range j.History {
		if h.State == schedulerv1.JobState_JOB_STATE_RUNNING {
			// Server and client share the clock here (one process).
			return h.Time.AsTime()
		}
	}
	return time.Now()
}

package gateway

import (
	"testing"

	"github.com/stretchr/testify/require"

	gatewayv1 "github.com/bmaas/bmaas/api/bmaas/gateway/v1"
	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
	schedulerv1 "github.com/bmaas/bmaas/api/bmaas/scheduler/v1"
)

func TestWaitReason(t *testing.T) {
	t.Parallel()
	queued := schedulerv1.JobState_JOB_STATE_QUEUED.String()
	withReplicas := func(rs ...*gatewayv1.Replica) *gatewayv1.Deployment {
		return &gatewayv1.Deployment{State: "CREATING", Status: &gatewayv1.DeploymentStatus{DesiredReplicas: 1, Replicas: rs}}
	}
	for _, tc := range []struct {
		name  string
		d     *gatewayv1.Deployment
		why   string
		stuck bool
	}{
		{"at zero", &gatewayv1.Deployment{State: "IDLE", Status: &gatewayv1.DeploymentStatus{}}, "scaled to zero", false},
		{"nothing submitted yet", withReplicas(), "no replica started yet", false},
		{"unschedulable", withReplicas(&gatewayv1.Replica{Id: "01J", JobState: queued, Reason: "Unschedulable: needs 64 CPUs, largest node has 2"}),
			"replica 01J QUEUED: Unschedulable: needs 64 CPUs, largest node has 2", true},
		{"no room", withReplicas(&gatewayv1.Replica{Id: "01J", JobState: queued, Reason: "Waiting for capacity: needs 1 CPU"}),
			"replica 01J QUEUED: Waiting for capacity: needs 1 CPU", true},
		{"queued, not looked at yet", withReplicas(&gatewayv1.Replica{Id: "01J", JobState: queued}), "replica 01J QUEUED (starting)", false},
		{"requeued after a crash", withReplicas(&gatewayv1.Replica{Id: "01J", JobState: queued, Reason: "requeued: exit 2"}),
			"replica 01J QUEUED: requeued: exit 2 (starting)", false},
		{"one placed, one not", withReplicas(
			&gatewayv1.Replica{Id: "01J", JobState: queued, Reason: "Waiting for capacity: needs 1 CPU"},
			&gatewayv1.Replica{Id: "01K", JobState: schedulerv1.JobState_JOB_STATE_RUNNING.String()}),
			"replica 01K RUNNING; replica 01J QUEUED: Waiting for capacity: needs 1 CPU (starting)", false},
		{"model does not resolve", &gatewayv1.Deployment{State: "CREATING", Status: &gatewayv1.DeploymentStatus{DesiredReplicas: 1,
			Message: "model iris version 3 is FAILED, not READY"}}, "model iris version 3 is FAILED, not READY", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			why, stuck := waitReason(tc.d)
			require.Equal(t, tc.why, why)
			require.Equal(t, tc.stuck, stuck)
		})
	}
	require.Equal(t, "waiting for a replica: replica 01J QUEUED: Unschedulable: x",
		replicaMessage([]*gatewayv1.Replica{{Id: "01J", JobState: queued, Reason: "Unschedulable: x"}, {Id: "01K", Ready: true}}))
}

// A replica reserves a small CPU share, may burst to a core, and gets
// memory that grows with its model; what its deployment sets wins.
func TestReplicaResources(t *testing.T) {
	t.Parallel()
	cfg := DefaultConfig()
	small := &registryv1.ModelVersion{Format: registryv1.ModelFormat_MODEL_FORMAT_NATIVE, SizeBytes: 2 << 10}
	r := cfg.replicaResources(nil, small)
	require.Equal(t, int64(250), r.CpuMillis)
	require.Equal(t, int64(1000), r.CpuLimitMillis)
	require.Equal(t, int64(256<<20), r.MemoryBytes)

	big := &registryv1.ModelVersion{Format: registryv1.ModelFormat_MODEL_FORMAT_ONNX, SizeBytes: 68 << 20}
	r = cfg.replicaResources(nil, big)
	require.Equal(t, int64(128<<20+12*(68<<20)), r.MemoryBytes, "room for the ONNX runtime's copies")

	r = cfg.replicaResources(&schedulerv1.Resources{CpuMillis: 2000, MemoryBytes: 1 << 30, Gpus: 1}, big)
	require.Equal(t, int64(2000), r.CpuMillis)
	require.Zero(t, r.CpuLimitMillis, "a request above the burst default is its own cap")
	require.Equal(t, int64(1<<30), r.MemoryBytes)
	require.Equal(t, int32(1), r.Gpus)
}

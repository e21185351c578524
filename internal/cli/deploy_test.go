package cli

import (
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"github.com/stretchr/testify/require"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	gatewayv1 "github.com/bmaas/bmaas/api/bmaas/gateway/v1"
	schedulerv1 "github.com/bmaas/bmaas/api/bmaas/scheduler/v1"
)

func TestDeployFlags(t *testing.T) {
	t.Parallel()
	set := func(names ...string) func(string) bool {
		return func(n string) bool {
			for _, x := range names {
				if x == n {
					return true
				}
			}
			return false
		}
	}
	f := deployFlags{model: "iris@production", min: 1, max: 4, batch: 32, queueDelay: 2 * time.Millisecond,
		canary: "iris@3", cpu: "500m", memory: "1Gi", gpus: 1}
	d, err := f.deployment(set("cpu", "memory"))
	require.NoError(t, err)
	require.Equal(t, "iris@production", d.Model)
	require.Equal(t, int32(1), d.MinReplicas)
	require.Equal(t, int32(4), d.MaxReplicas)
	require.Equal(t, int64(2000), d.MaxQueueDelayMicros)
	require.True(t, d.Autoscaling)
	require.Equal(t, int64(3), d.CanaryVersion)
	require.Equal(t, int32(10), d.CanaryPercent, "default canary share")
	require.Equal(t, int64(500), d.Resources.CpuMillis)
	require.Equal(t, int64(1<<30), d.Resources.MemoryBytes)
	require.Equal(t, int32(1), d.Resources.Gpus)

	f = deployFlags{model: "iris", scaleToZero: 90 * time.Second, noAutoscaling: true}
	d, err = f.deployment(set())
	require.NoError(t, err)
	require.Equal(t, int64(90), d.ScaleToZeroSeconds)
	require.False(t, d.Autoscaling)
	require.Nil(t, d.Resources)

	for _, tc := range []struct {
		f   deployFlags
		msg string
	}{
		{deployFlags{}, "--model is required"},
		{deployFlags{model: "iris@"}, "missing version"},
		{deployFlags{model: "iris", min: 3, max: 2}, "--max (2) must be at least --min (3)"},
		{deployFlags{model: "iris", min: 1, scaleToZero: time.Second}, "--scale-to-zero needs --min 0"},
		{deployFlags{model: "iris", canary: "other@2"}, "expected iris@VERSION"},
		{deployFlags{model: "iris", canary: "iris@prod"}, "expected iris@VERSION"},
		{deployFlags{model: "iris", canaryPercent: 5}, "--canary-percent needs --canary"},
		{deployFlags{model: "iris", canary: "iris@2", canaryPercent: 101}, "within 0 and 100"},
		{deployFlags{model: "iris", cpu: "lots"}, "--cpu"},
	} {
		_, err := tc.f.deployment(set("cpu"))
		require.ErrorContains(t, err, tc.msg)
	}
}

func TestScaleFlags(t *testing.T) {
	t.Parallel()
	changed := func(names ...string) func(string) bool {
		return func(n string) bool {
			for _, x := range names {
				if x == n {
					return true
				}
			}
			return false
		}
	}
	d := &gatewayv1.Deployment{MinReplicas: 1, MaxReplicas: 2, Autoscaling: true}
	require.NoError(t, (&scaleFlags{min: 3}).apply(d, changed("min")))
	require.Equal(t, int32(3), d.MinReplicas)
	require.Equal(t, int32(3), d.MaxReplicas, "max follows a larger min")

	d = &gatewayv1.Deployment{MinReplicas: 1, MaxReplicas: 1}
	require.NoError(t, (&scaleFlags{min: 2}).apply(d, changed("min")))
	require.Equal(t, int32(2), d.MaxReplicas, "without autoscaling max is min")

	d = &gatewayv1.Deployment{MinReplicas: 1, MaxReplicas: 4, Autoscaling: true}
	require.NoError(t, (&scaleFlags{max: 8, noAuto: true}).apply(d, changed("max", "no-autoscaling")))
	require.Equal(t, int32(8), d.MaxReplicas)
	require.False(t, d.Autoscaling)

	// Scale to zero: --min 0 keeps or takes the gateway's idle time,
	// --scale-to-zero sets it, --min above 0 drops it.
	d = &gatewayv1.Deployment{MinReplicas: 1, MaxReplicas: 2, Autoscaling: true}
	require.NoError(t, (&scaleFlags{min: 0}).apply(d, changed("min")))
	require.Zero(t, d.MinReplicas)
	require.Zero(t, d.ScaleToZeroSeconds, "the gateway's default")
	require.NoError(t, (&scaleFlags{scaleToZero: 30 * time.Second}).apply(d, changed("scale-to-zero")))
	require.Equal(t, int64(30), d.ScaleToZeroSeconds)
	require.NoError(t, (&scaleFlags{min: 1}).apply(d, changed("min")))
	require.Zero(t, d.ScaleToZeroSeconds)
	require.ErrorContains(t, (&scaleFlags{scaleToZero: time.Minute}).apply(d, changed("scale-to-zero")), "--scale-to-zero needs --min 0")
	require.ErrorContains(t, (&scaleFlags{scaleToZero: -time.Second}).apply(d, changed("min", "scale-to-zero")), "must not be negative")

	require.ErrorContains(t, (&scaleFlags{}).apply(d, changed()), "give --min")
	require.ErrorContains(t, (&scaleFlags{min: 5, max: 2}).apply(d, changed("min", "max")), "must be at least")
}

func TestDeploymentTables(t *testing.T) {
	t.Parallel()
	d := &gatewayv1.Deployment{Name: "iris", Model: "iris@production", MinReplicas: 1, MaxReplicas: 4, State: "READY",
		Autoscaling: true, TargetConcurrency: 4, MaxBatchSize: 16, MaxQueueDelayMicros: 1000, CanaryVersion: 3, CanaryPercent: 20,
		Status: &gatewayv1.DeploymentStatus{Version: 2, PreviousVersion: 1, ReadyReplicas: 1, DesiredReplicas: 1,
			Replicas: []*gatewayv1.Replica{{Id: "01J", Version: 2, Node: "n1", Endpoint: "127.0.0.1:5000", Ready: true, JobState: "JOB_STATE_RUNNING"}}}}
	var tb strings.Builder
	tab := newTable(&tb)
	deploymentRows(tab, []*gatewayv1.Deployment{d})
	require.NoError(t, tab.flush())
	require.Contains(t, tb.String(), "iris   iris@production   2         READY   1/1")
	require.Contains(t, tb.String(), "v3 20%")
}

// deploy get says how long a deployment that scales to zero has been
// idle, why a replica waits, and what each replica requests.
func TestDeploymentShowsWhyItWaits(t *testing.T) {
	t.Parallel()
	d := &gatewayv1.Deployment{Name: "iris", Model: "iris@1", MinReplicas: 0, MaxReplicas: 2, State: "CREATING",
		Autoscaling: true, TargetConcurrency: 4, ScaleToZeroSeconds: 60,
		Status: &gatewayv1.DeploymentStatus{Version: 1, DesiredReplicas: 1,
			LastRequestTime:  timestamppb.New(time.Now().Add(-42 * time.Second)),
			Message:          "waiting for a replica: replica 01J QUEUED: Unschedulable: needs 64 CPUs",
			ReplicaResources: &schedulerv1.Resources{CpuMillis: 250, CpuLimitMillis: 1000, MemoryBytes: 256 << 20},
			Replicas: []*gatewayv1.Replica{{Id: "01J", Version: 1, JobState: "JOB_STATE_QUEUED",
				Reason: "Unschedulable: needs 64 CPUs", Restarts: 2}}}}
	var out strings.Builder
	cmd := &cobra.Command{}
	cmd.SetOut(&out)
	require.NoError(t, printDeployment(&globals{output: "table"}, cmd, d))
	require.Regexp(t, `SCALE TO ZERO\s+idle 4[2-4]s, scales to zero after 60s`, out.String())
	require.Regexp(t, `RESOURCES\s+cpu 0.25 \(bursts to 1\), memory 256 MiB`, out.String())
	require.Regexp(t, `01J\s+1\s+-\s+-\s+false\s+QUEUED\s+2\s+Unschedulable: needs 64 CPUs`, out.String(), "with its restarts")

	d.MinReplicas, d.ScaleToZeroSeconds = 1, 0
	out.Reset()
	require.NoError(t, printDeployment(&globals{output: "table"}, cmd, d))
	require.Regexp(t, `SCALE TO ZERO\s+never \(min 1\)`, out.String())

	d.MinReplicas, d.ScaleToZeroSeconds, d.State = 0, 60, "IDLE"
	d.Status.DesiredReplicas, d.Status.Replicas = 0, nil
	out.Reset()
	require.NoError(t, printDeployment(&globals{output: "table"}, cmd, d))
	require.Regexp(t, `SCALE TO ZERO\s+at zero \(idle 4[2-4]s\); the next request starts a replica`, out.String())
}

// A deployment without a ready replica is the gateway's answer, not a
// server the CLI cannot reach: its reason is printed as it is.
func TestNoReadyReplicaIsNotUnreachable(t *testing.T) {
	t.Parallel()
	msg := `deployment "iris" has no ready replica: replica 01J QUEUED: Unschedulable: needs 4 CPU, largest node has 2`
	s, err := status.New(codes.Unavailable, msg).WithDetails(&errdetails.ErrorInfo{Reason: "NO_READY_REPLICA", Domain: "bmaas"})
	require.NoError(t, err)
	got := errorHints{hint: " (a server with TLS needs --tls-ca)"}.plain(s.Err())
	require.Equal(t, "Unavailable: "+msg, got.Error())

	unreachable := errorHints{}.plain(status.Error(codes.Unavailable, "connection error: connection refused"))
	require.Contains(t, unreachable.Error(), "cannot reach the bmaas server")
}

package gateway

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/timestamppb"

	schedulerv1 "github.com/bmaas/bmaas/api/bmaas/scheduler/v1"
)

func failedReplica(id string, v int64, at time.Time, reason string) *schedulerv1.Job {
	return &schedulerv1.Job{Id: id, State: schedulerv1.JobState_JOB_STATE_FAILED, Reason: reason, UpdateTime: timestamppb.New(at),
		Spec: &schedulerv1.JobSpec{Runtime: &schedulerv1.JobSpec_Serving{Serving: &schedulerv1.ServingRuntime{Version: v}}}}
}

func TestFailureBackoffDoublesToItsCap(t *testing.T) {
	require.Equal(t, 5*time.Second, failureBackoff(1))
	require.Equal(t, 10*time.Second, failureBackoff(2))
	require.Equal(t, 40*time.Second, failureBackoff(4))
	require.Equal(t, 5*time.Minute, failureBackoff(7))
	require.Equal(t, 5*time.Minute, failureBackoff(100))
}

// Failures of the version within the window count; the latest says why
// and when the next replica may start.
func TestRecentFailuresHoldAndSayWhy(t *testing.T) {
	now := time.Date(2026, 12, 5, 18, 30, 0, 0, time.UTC)
	jobs := []*schedulerv1.Job{
		failedReplica("j-old", 3, now.Add(-time.Hour), "long ago"),
		failedReplica("j-other", 2, now.Add(-time.Second), "another version"),
		failedReplica("j-1", 3, now.Add(-20*time.Second), "server exited with status 3"),
		failedReplica("j-2", 3, now.Add(-2*time.Second), "readiness probe GET /nope: 404 Not Found after 3s\nlast words"),
	}
	f := recentFailures(jobs, 3, now)
	require.Equal(t, 2, f.count)
	require.Equal(t, "j-2", f.last.Id)
	require.True(t, f.holds(now), "10s after the second failure")
	require.Equal(t, "replica j-2 failed (2 times in 30m0s): readiness probe GET /nope: 404 Not Found after 3s; "+
		"the next replica starts at 18:30:08 UTC", f.message(now))
	later := now.Add(8 * time.Second)
	require.False(t, f.holds(later))
	require.Equal(t, "replica j-2 failed (2 times in 30m0s): readiness probe GET /nope: 404 Not Found after 3s", f.message(later))

	one := recentFailures(jobs, 2, now)
	require.Equal(t, "replica j-other failed (once): another version; the next replica starts at 18:30:04 UTC", one.message(now))

	none := recentFailures(jobs, 9, now)
	require.False(t, none.holds(now))
	require.Empty(t, none.message(now))
}

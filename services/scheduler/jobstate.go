package scheduler

import (
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	schedulerv1 "github.com/bmaas/bmaas/api/bmaas/scheduler/v1"
)

// terminal reports whether a job state is final.
func terminal(s schedulerv1.JobState) bool {
	return s == schedulerv1.JobState_JOB_STATE_SUCCEEDED || s == schedulerv1.JobState_JOB_STATE_FAILED ||
		s == schedulerv1.JobState_JOB_STATE_CANCELLED
}

// stateName is the lower-case state for events and metrics: "queued".
func stateName(s schedulerv1.JobState) string {
	return strings.ToLower(strings.TrimPrefix(s.String(), "JOB_STATE_"))
}

// move changes j's state, recording the transition.
func move(j *schedulerv1.Job, s schedulerv1.JobState, reason string, now time.Time) {
	ts := timestamppb.New(now)
	j.State, j.Reason, j.UpdateTime = s, reason, ts
	j.History = append(j.History, &schedulerv1.JobTransition{State: s, Time: ts, Reason: reason})
}

// lastMove returns the time of the newest transition into s, or zero.
func lastMove(j *schedulerv1.Job, s schedulerv1.JobState) time.Time {
	for i := len(j.History) - 1; i >= 0; i-- {
		if j.History[i].State == s {
			return j.History[i].Time.AsTime()
		}
	}
	return time.Time{}
}

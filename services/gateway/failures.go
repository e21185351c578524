package gateway

import (
	"fmt"
	"strings"
	"time"

	schedulerv1 "github.com/bmaas/bmaas/api/bmaas/scheduler/v1"
)

// Replicas that fail (a server that never passes its probe, a command
// that does not exist, a bundle that does not unpack) are not replaced at
// once: the deployment waits longer after each failure of its version
// (a crash loop's back-off), and while no replica is ready it says why,
// with the failed replica's reason.
const (
	failureWindow     = 30 * time.Minute // failures older than this are forgotten
	failureBackoffMin = 5 * time.Second
	failureBackoffMax = 5 * time.Minute
)

// failures is what a deployment's failed replicas of one version say.
type failures struct {
	count int              // failed in the window
	last  *schedulerv1.Job // the latest of them
	next  time.Time        // no replica replaces them before
}

// recentFailures reads the failed replica jobs of version v that ended
// within the window before now.
func recentFailures(failed []*schedulerv1.Job, v int64, now time.Time) failures {
	var f failures
	for _, j := range failed {
		if j.GetSpec().GetServing().GetVersion() != v {
			continue
		}
		at := j.GetUpdateTime().AsTime()
		if now.Sub(at) > failureWindow {
			continue
		}
		f.count++
		if f.last == nil || at.After(f.last.GetUpdateTime().AsTime()) {
			f.last = j
		}
	}
	if f.last != nil {
		f.next = f.last.GetUpdateTime().AsTime().Add(failureBackoff(f.count))
	}
	return f
}

// failureBackoff doubles from failureBackoffMin with each failure, up to
// failureBackoffMax.
func failureBackoff(n int) time.Duration {
	d := failureBackoffMin
	for i := 1; i < n && d < failureBackoffMax; i++ {
		d *= 2
	}
	return min(d, failureBackoffMax)
}

// holds says whether a new replica must wait.
func (f failures) holds(now time.Time) bool { return f.last != nil && now.Before(f.next) }

// message says why the deployment has no ready replica: the last failed
// replica's reason (its first line) and when the next one starts.
func (f failures) message(now time.Time) string {
	if f.last == nil {
		return ""
	}
	reason, _, _ := strings.Cut(f.last.GetReason(), "\n")
	times := "once"
	if f.count > 1 {
		times = fmt.Sprintf("%d times in %s", f.count, failureWindow)
	}
	msg := fmt.Sprintf("replica %s failed (%s): %s", f.last.GetId(), times, reason)
	if f.holds(now) {
		// A time, not a countdown: the status is written only when it changes.
		msg += "; the next replica starts at " + f.next.UTC().Format(time.TimeOnly) + " UTC"
	}
	return msg
}

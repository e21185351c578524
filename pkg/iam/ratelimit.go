package iam

import (
	"math"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Limits bounds the calls each identity makes to this process: a token
// bucket per identity (x/time/rate), of Rate calls a second and Burst at
// once. The guard asks it for every call a caller makes itself: never
// for the mesh, nor for a call another process forwards for a caller
// (counted where it came in). Each process counts its own calls, so a
// client spread over N processes may make N times the rate.
type Limits struct {
	rate  rate.Limit
	burst int
	now   func() time.Time

	mu      sync.Mutex
	buckets map[string]*bucket
	swept   time.Time
}

type bucket struct {
	lim  *rate.Limiter
	used time.Time
}

// limitsIdle is how long a bucket no call used is kept: a full bucket is
// the same as none.
const limitsIdle = 10 * time.Minute

// NewLimits limits each identity to perSecond calls a second, burst at
// once (0: one second's worth, at least 1). perSecond 0 is no limit: nil.
func NewLimits(perSecond float64, burst int, now func() time.Time) *Limits {
	if perSecond <= 0 {
		return nil
	}
	if burst <= 0 {
		burst = max(1, int(math.Ceil(perSecond)))
	}
	if now == nil {
		now = time.Now
	}
	return &Limits{rate: rate.Limit(perSecond), burst: burst, now: now, buckets: map[string]*bucket{}}
}

// Allow takes one call from identity's bucket; when it is empty, it says
// how long until the bucket holds a call again.
func (l *Limits) Allow(identity string) (bool, time.Duration) {
	if l == nil {
		return true, 0
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.swept) > limitsIdle {
		for k, b := range l.buckets {
			if now.Sub(b.used) > limitsIdle {
				delete(l.buckets, k)
			}
		}
		l.swept = now
	}
	b := l.buckets[identity]
	if b == nil {
		b = &bucket{lim: rate.NewLimiter(l.rate, l.burst)}
		l.buckets[identity] = b
	}
	b.used = now
	if b.lim.AllowN(now, 1) {
		return true, 0
	}
	r := b.lim.ReserveN(now, 1)
	wait := r.DelayFrom(now)
	r.CancelAt(now)
	return false, wait
}

// String says the limit as the errors do.
func (l *Limits) String() string {
	calls := " calls"
	if l.rate == 1 {
		calls = " call"
	}
	return strconv.FormatFloat(float64(l.rate), 'g', -1, 64) + calls + " a second, " + strconv.Itoa(l.burst) + " at once"
}

// refusal is the error of a call over the limit: ResourceExhausted, and
// how long to wait in the message (and, over HTTP, Retry-After).
func (l *Limits) refusal(identity string, wait time.Duration) *status.Status {
	return status.Newf(codes.ResourceExhausted, "rate limit: %s may make %s; retry in %s",
		identity, l, wait.Round(time.Millisecond))
}

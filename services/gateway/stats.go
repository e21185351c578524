package gateway

import (
	"sync"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	gatewayv1 "github.com/bmaas/bmaas/api/bmaas/gateway/v1"
)

// depStats is the load of one deployment through this gateway: requests
// in flight (held ones included) and their time integral. Two readers
// cut the integral into periods: the leader's autoscaler (observe) and
// the load report every gateway publishes (report).
type depStats struct {
	mu       sync.Mutex
	inflight int64
	area     float64 // request-seconds
	last     time.Time
	lastReq  time.Time
	// samples: average concurrency per sampling period, newest last.
	samples []sample
	// Where each reader last cut the integral.
	sampled, reported cut
}

// cut is where a reader last cut the integral: the area and the time.
type cut struct {
	area float64
	at   time.Time
}

// next returns the average concurrency since c (ok false over no time)
// and moves c to area at now.
func (c *cut) next(area float64, now time.Time) (avg float64, ok bool) {
	if dt := now.Sub(c.at).Seconds(); dt > 0 {
		avg, ok = (area-c.area)/dt, true
	}
	c.area, c.at = area, now
	return avg, ok
}

type sample struct {
	at  time.Time
	avg float64
}

// stats holds the load of every deployment.
type stats struct {
	now func() time.Time
	mu  sync.RWMutex
	m   map[string]*depStats
}

func newStats(now func() time.Time) *stats { return &stats{now: now, m: map[string]*depStats{}} }

func (s *stats) get(dep string) *depStats {
	s.mu.RLock()
	d := s.m[dep]
	s.mu.RUnlock()
	if d != nil {
		return d
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if d = s.m[dep]; d == nil {
		now := s.now()
		d = &depStats{last: now, sampled: cut{at: now}, reported: cut{at: now}}
		s.m[dep] = d
	}
	return d
}

// begin counts a request in; end counts it out.
func (s *stats) begin(dep string) *depStats {
	d := s.get(dep)
	now := s.now()
	d.mu.Lock()
	d.advance(now)
	d.inflight++
	d.lastReq = now
	d.mu.Unlock()
	return d
}

func (s *stats) end(d *depStats) {
	now := s.now()
	d.mu.Lock()
	d.advance(now)
	d.inflight--
	d.lastReq = now
	d.mu.Unlock()
}

func (d *depStats) advance(now time.Time) {
	if dt := now.Sub(d.last).Seconds(); dt > 0 {
		d.area += float64(d.inflight) * dt
	}
	d.last = now
}

// observe closes a sampling period and returns the average concurrency
// over the stable and the panic windows, the requests in flight now and
// the time of the last request. remote is the concurrency the other
// gateways report for dep; it adds to this period's sample, so the
// windows average the load through every gateway.
func (s *stats) observe(dep string, stable, panicW time.Duration, remote float64) (stableAvg, panicAvg float64, inflight int64, lastReq time.Time) {
	d := s.get(dep)
	now := s.now()
	d.mu.Lock()
	defer d.mu.Unlock()
	d.advance(now)
	if avg, ok := d.sampled.next(d.area, now); ok {
		d.samples = append(d.samples, sample{at: now, avg: avg + remote})
	}
	for len(d.samples) > 0 && now.Sub(d.samples[0].at) > stable {
		d.samples = d.samples[1:]
	}
	var sSum, pSum float64
	var pN int
	for _, x := range d.samples {
		sSum += x.avg
		if now.Sub(x.at) <= panicW {
			pSum += x.avg
			pN++
		}
	}
	if n := len(d.samples); n > 0 {
		stableAvg = sSum / float64(n)
	}
	if pN > 0 {
		panicAvg = pSum / float64(pN)
	}
	return stableAvg, panicAvg, d.inflight, d.lastReq
}

// report closes a load-report period and returns the load of every
// deployment that had traffic over it or has requests in flight: the
// average concurrency since the previous report, the requests in flight
// now and the last request's time.
func (s *stats) report() []*gatewayv1.DeploymentLoad {
	now := s.now()
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []*gatewayv1.DeploymentLoad
	for dep, d := range s.m {
		d.mu.Lock()
		d.advance(now)
		since := d.reported.at
		avg, _ := d.reported.next(d.area, now)
		busy := avg > 0 || d.inflight > 0 || (!d.lastReq.IsZero() && !d.lastReq.Before(since))
		if busy {
			l := &gatewayv1.DeploymentLoad{Deployment: dep, Concurrency: avg, InFlight: d.inflight}
			if !d.lastReq.IsZero() {
				l.LastRequestTime = timestamppb.New(d.lastReq)
			}
			out = append(out, l)
		}
		d.mu.Unlock()
	}
	return out
}

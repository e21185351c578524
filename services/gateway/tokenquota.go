package gateway

import (
	"fmt"
	"sync"
	"time"

	gatewayv1 "github.com/bmaas/bmaas/api/bmaas/gateway/v1"
)

// tokenQuota bounds the language-model tokens (prompt and completion, as
// the replicas report them) a project uses a minute: its quota's
// llm_tokens_per_minute, counted by each gateway over the last minute in
// one-second slots, plus what the other gateways used (their load
// reports, at most a report interval old). A request is refused (429)
// while the project has used its minute's tokens; the one that goes over
// is answered, as the tokens are known only once it is.
type tokenQuota struct {
	mu    sync.Mutex
	used  map[string]*tokenWindow
	limit func(project string) int64
	now   func() time.Time
	// others is what the other gateways used over their last minute.
	others func(project string) int64
}

// tokenWindow is one project's tokens per second over the last minute.
type tokenWindow struct {
	slots [60]int64
	secs  [60]int64 // the second each slot counts
}

func newTokenQuota(limit func(project string) int64, now func() time.Time) *tokenQuota {
	if now == nil {
		now = time.Now
	}
	return &tokenQuota{used: map[string]*tokenWindow{}, limit: limit, now: now}
}

// add counts tokens a project used now.
func (q *tokenQuota) add(project string, tokens int64) {
	if q == nil || tokens <= 0 {
		return
	}
	sec := q.now().Unix()
	q.mu.Lock()
	defer q.mu.Unlock()
	w := q.used[project]
	if w == nil {
		w = &tokenWindow{}
		q.used[project] = w
	}
	i := sec % 60
	if w.secs[i] != sec {
		w.secs[i], w.slots[i] = sec, 0
	}
	w.slots[i] += tokens
}

// usedBy is what project used through this gateway over the last minute.
func (q *tokenQuota) usedBy(project string) int64 {
	sec := q.now().Unix()
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.window(q.used[project], sec)
}

func (q *tokenQuota) window(w *tokenWindow, sec int64) int64 {
	var used int64
	if w != nil {
		for i := range w.slots {
			if sec-w.secs[i] < 60 {
				used += w.slots[i]
			}
		}
	}
	return used
}

// report is what each project used through this gateway over the last
// minute, for the load report (the projects that used none left out).
func (q *tokenQuota) report() []*gatewayv1.ProjectTokens {
	if q == nil {
		return nil
	}
	sec := q.now().Unix()
	q.mu.Lock()
	defer q.mu.Unlock()
	var out []*gatewayv1.ProjectTokens
	for p, w := range q.used {
		if n := q.window(w, sec); n > 0 {
			out = append(out, &gatewayv1.ProjectTokens{Project: p, Tokens: n})
		} else {
			delete(q.used, p)
		}
	}
	return out
}

// check refuses a request of project when it has used its minute's
// tokens, saying so; nil otherwise.
func (q *tokenQuota) check(project string) error {
	if q == nil {
		return nil
	}
	limit := q.limit(project)
	if limit <= 0 {
		return nil
	}
	used := q.usedBy(project)
	if q.others != nil {
		used += q.others(project)
	}
	if used >= limit {
		return fmt.Errorf("over quota: project %s used %d of its %d language-model tokens a minute", project, used, limit)
	}
	return nil
}

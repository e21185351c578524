package gateway

import (
	"fmt"
	"sync"
	"time"
)

// tokenQuota bounds the language-model tokens (prompt and completion, as
// the replicas report them) a project uses a minute: its quota's
// llm_tokens_per_minute, counted by each gateway over the last minute in
// one-second slots. A request is refused (429) while the project has
// used its minute's tokens; the one that goes over is answered, as the
// tokens are known only once it is. Deployments all belong to the
// default project.
type tokenQuota struct {
	mu    sync.Mutex
	used  map[string]*tokenWindow
	limit func(project string) int64
	now   func() time.Time
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
	sec := q.now().Unix()
	q.mu.Lock()
	var used int64
	if w := q.used[project]; w != nil {
		for i := range w.slots {
			if sec-w.secs[i] < 60 {
				used += w.slots[i]
			}
		}
	}
	q.mu.Unlock()
	if used >= limit {
		return fmt.Errorf("over quota: project %s used %d of its %d language-model tokens a minute", project, used, limit)
	}
	return nil
}

package gateway

import (
	"sync"
	"time"

	gatewayv1 "github.com/bmaas/bmaas/api/bmaas/gateway/v1"
)

// The gateway keeps each deployment's requests on the OpenAI routes over
// the last llmWindowSpan (at most llmWindowMax of them) to say, in a
// read of the deployment (status.llm), what users of the model see.
const (
	llmWindowSpan = 5 * time.Minute
	llmWindowMax  = 4096
)

// llmRecord is one answered request.
type llmRecord struct {
	at                 time.Time
	ttft, tps          float64 // 0: not measured (a whole answer; one token)
	prompt, completion int
}

type llmWindows struct {
	mu    sync.Mutex
	now   func() time.Time
	start time.Time
	m     map[string][]llmRecord
}

func newLLMWindows(now func() time.Time) *llmWindows {
	return &llmWindows{now: now, start: now(), m: map[string][]llmRecord{}}
}

func (w *llmWindows) add(dep string, r llmRecord) {
	w.mu.Lock()
	defer w.mu.Unlock()
	rs := w.trim(append(w.m[dep], r))
	if len(rs) > llmWindowMax {
		rs = rs[len(rs)-llmWindowMax:]
	}
	w.m[dep] = rs
}

// trim drops the records older than the window.
func (w *llmWindows) trim(rs []llmRecord) []llmRecord {
	cut := w.now().Add(-llmWindowSpan)
	i := 0
	for i < len(rs) && rs[i].at.Before(cut) {
		i++
	}
	return rs[i:]
}

// summary is the deployment's figures over the window; nil without a
// request in it.
func (w *llmWindows) summary(dep string) *gatewayv1.LLMStats {
	w.mu.Lock()
	defer w.mu.Unlock()
	rs := w.trim(w.m[dep])
	w.m[dep] = rs
	if len(rs) == 0 {
		return nil
	}
	st := &gatewayv1.LLMStats{Requests: int64(len(rs)), WindowSeconds: min(llmWindowSpan, w.now().Sub(w.start)).Seconds()}
	var nTTFT, nTPS int
	for _, r := range rs {
		st.PromptTokens += int64(r.prompt)
		st.CompletionTokens += int64(r.completion)
		if r.ttft > 0 {
			st.TimeToFirstTokenSeconds += r.ttft
			nTTFT++
		}
		if r.tps > 0 {
			st.OutputTokensPerSecond += r.tps
			nTPS++
		}
	}
	if nTTFT > 0 {
		st.TimeToFirstTokenSeconds /= float64(nTTFT)
	}
	if nTPS > 0 {
		st.OutputTokensPerSecond /= float64(nTPS)
	}
	return st
}

// withLLM fills a read deployment's status.llm from this gateway's window
// (never stored: the reads only).
func (s *Service) withLLM(d *gatewayv1.Deployment) {
	if d == nil {
		return
	}
	if st := s.llm.summary(d.GetName()); st != nil {
		if d.Status == nil {
			d.Status = &gatewayv1.DeploymentStatus{}
		}
		d.Status.Llm = st
	}
}

package gateway

import (
	"bytes"
	"encoding/json"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/bmaas/bmaas/pkg/telemetry"
)

// llmMetrics are what users of language models watch, per deployment,
// measured by the gateway on the OpenAI routes: the time to the first
// generated text of a stream, the time between its chunks, the output
// rate of each request, and the prompt and completion tokens the replicas
// report (usage).
type llmMetrics struct {
	ttft, itl, tps     *prometheus.HistogramVec
	prompt, completion *prometheus.CounterVec
}

func newLLMMetrics(reg prometheus.Registerer) *llmMetrics {
	latency := []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}
	m := &llmMetrics{
		ttft: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "bmaas_llm_time_to_first_token_seconds",
			Help: "Time from a streamed request's arrival at the gateway to its first generated text, by deployment.", Buckets: latency}, []string{"deployment"}),
		itl: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "bmaas_llm_inter_token_latency_seconds",
			Help:    "Time between the chunks of generated text of a stream, by deployment.",
			Buckets: []float64{.001, .0025, .005, .01, .02, .04, .08, .16, .32, .64, 1.28}}, []string{"deployment"}),
		tps: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "bmaas_llm_output_tokens_per_second",
			Help:    "Completion tokens per second of each streamed request after its first token, by deployment.",
			Buckets: []float64{1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500}}, []string{"deployment"}),
		prompt: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "bmaas_llm_prompt_tokens_total",
			Help: "Prompt tokens of the requests answered, as the replicas report them (usage), by deployment."}, []string{"deployment"}),
		completion: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "bmaas_llm_completion_tokens_total",
			Help: "Completion tokens generated, as the replicas report them (usage), by deployment."}, []string{"deployment"}),
	}
	if reg != nil {
		m.ttft = telemetry.Register(reg, m.ttft)
		m.itl = telemetry.Register(reg, m.itl)
		m.tps = telemetry.Register(reg, m.tps)
		m.prompt = telemetry.Register(reg, m.prompt)
		m.completion = telemetry.Register(reg, m.completion)
	}
	return m
}

// maxWatchedBody bounds what the gateway keeps of a non-streamed answer
// to read its usage.
const maxWatchedBody = 1 << 20

// generation watches one answer as it passes: the events of a stream
// (the text chunks' times and the usage) or a whole answer's usage.
type generation struct {
	start, first, last time.Time
	chunks             int
	prompt, completion int
	usage              bool
	carry              []byte // a stream's unfinished event, or a whole answer
	stream             bool
	itl                prometheus.Observer // the time between chunks
}

// feed reads bytes of the answer as they pass.
func (g *generation) feed(b []byte, now time.Time) {
	if !g.stream {
		if len(g.carry)+len(b) <= maxWatchedBody {
			g.carry = append(g.carry, b...)
		}
		return
	}
	g.carry = append(g.carry, b...)
	for {
		i := bytes.Index(g.carry, []byte("\n\n"))
		if i < 0 {
			break
		}
		g.event(g.carry[:i], now)
		g.carry = g.carry[i+2:]
	}
	if len(g.carry) > maxWatchedBody {
		g.carry = g.carry[:0] // not an event stream this gateway can read
	}
}

// chunk is what the gateway reads of a chunk or an answer.
type chunk struct {
	Choices []struct {
		Text    string                    `json:"text"`
		Delta   *struct{ Content string } `json:"delta"`
		Message *struct{ Content string } `json:"message"`
	} `json:"choices"`
	Usage *struct {
		Prompt     int `json:"prompt_tokens"`
		Completion int `json:"completion_tokens"`
	} `json:"usage"`
}

// event reads one server-sent event.
func (g *generation) event(ev []byte, now time.Time) {
	for line := range bytes.SplitSeq(ev, []byte("\n")) {
		data, ok := bytes.CutPrefix(line, []byte("data:"))
		if !ok {
			continue
		}
		data = bytes.TrimSpace(data)
		if bytes.Equal(data, []byte("[DONE]")) {
			continue
		}
		var c chunk
		if json.Unmarshal(data, &c) != nil {
			continue
		}
		g.read(&c)
		for _, ch := range c.Choices {
			if ch.Text != "" || (ch.Delta != nil && ch.Delta.Content != "") {
				if g.chunks == 0 {
					g.first = now
				} else if g.itl != nil {
					g.itl.Observe(now.Sub(g.last).Seconds())
				}
				g.chunks++
				g.last = now
				break
			}
		}
	}
}

func (g *generation) read(c *chunk) {
	if c.Usage != nil {
		g.usage, g.prompt, g.completion = true, c.Usage.Prompt, c.Usage.Completion
	}
}

// observe records the answer's figures for deployment dep, and returns
// them.
func (g *generation) observe(m *llmMetrics, dep string) llmRecord {
	rec := llmRecord{at: g.last}
	if !g.stream {
		var c chunk
		if json.Unmarshal(g.carry, &c) == nil {
			g.read(&c)
		}
	}
	if g.usage {
		m.prompt.WithLabelValues(dep).Add(float64(g.prompt))
		m.completion.WithLabelValues(dep).Add(float64(g.completion))
		rec.prompt, rec.completion = g.prompt, g.completion
	}
	if !g.stream || g.chunks == 0 {
		return rec
	}
	rec.ttft = g.first.Sub(g.start).Seconds()
	m.ttft.WithLabelValues(dep).Observe(rec.ttft)
	tokens := g.chunks
	if g.usage {
		tokens = g.completion
	}
	if span := g.last.Sub(g.first); tokens > 1 && span > 0 {
		rec.tps = float64(tokens-1) / span.Seconds()
		m.tps.WithLabelValues(dep).Observe(rec.tps)
	}
	return rec
}

package gateway

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"
)

// A stream read in pieces that split its events: the first text's time,
// one gap per later chunk, the usage; the role-only first chunk and the
// usage chunk are not text.
func TestGenerationReadsAStreamInPieces(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := newLLMMetrics(reg)
	t0 := time.Unix(100, 0)
	g := &generation{start: t0, stream: true, itl: m.itl.WithLabelValues("chat")}
	stream := ": keep-alive\n\n" +
		`data: {"choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}` + "\n\n" +
		`data: {"choices":[{"index":0,"delta":{"content":"Ele"}}]}` + "\n\n" +
		`data: {"choices":[{"index":0,"delta":{"content":"mentary"}}]}` + "\n\n" +
		`data: {"choices":[{"index":0,"delta":{"content":"."},"finish_reason":"stop"}]}` + "\n\n" +
		`data: {"choices":[],"usage":{"prompt_tokens":12,"completion_tokens":5,"total_tokens":17}}` + "\n\n" +
		"data: [DONE]\n\n"
	at := t0
	for i := 0; i < len(stream); i += 40 { // pieces that cut events
		at = at.Add(100 * time.Millisecond)
		g.feed([]byte(stream[i:min(i+40, len(stream))]), at)
	}
	require.Equal(t, 3, g.chunks)
	require.True(t, g.usage)
	require.Equal(t, 12, g.prompt)
	require.Equal(t, 5, g.completion)
	require.Greater(t, g.first, t0)
	g.observe(m, "chat")
	ttft := histogram(t, m.ttft, "chat")
	require.Equal(t, uint64(1), ttft.GetSampleCount())
	require.InDelta(t, g.first.Sub(t0).Seconds(), ttft.GetSampleSum(), 1e-9)
	require.Equal(t, 12.0, testutil.ToFloat64(m.prompt.WithLabelValues("chat")))
	require.Equal(t, 5.0, testutil.ToFloat64(m.completion.WithLabelValues("chat")))
	require.Equal(t, uint64(2), histogram(t, m.itl, "chat").GetSampleCount(), "a gap after each chunk but the first")
	n, err := testutil.GatherAndCount(reg, "bmaas_llm_output_tokens_per_second")
	require.NoError(t, err)
	require.Equal(t, 1, n)
}

// A whole answer's usage is read at its end; it has no first token.
func TestGenerationReadsAWholeAnswer(t *testing.T) {
	m := newLLMMetrics(prometheus.NewRegistry())
	g := &generation{start: time.Now()}
	g.feed([]byte(`{"id":"chatcmpl-1","choices":[{"index":0,"message":{"role":"assistant","content":"Hi"}}],`), time.Now())
	g.feed([]byte(`"usage":{"prompt_tokens":4,"completion_tokens":2,"total_tokens":6}}`), time.Now())
	g.observe(m, "chat")
	require.Equal(t, 4.0, testutil.ToFloat64(m.prompt.WithLabelValues("chat")))
	require.Equal(t, 2.0, testutil.ToFloat64(m.completion.WithLabelValues("chat")))
	require.Equal(t, 0, testutil.CollectAndCount(m.ttft))
}

func histogram(t *testing.T, v *prometheus.HistogramVec, label string) *dto.Histogram {
	t.Helper()
	var out dto.Metric
	require.NoError(t, v.WithLabelValues(label).(prometheus.Metric).Write(&out))
	return out.GetHistogram()
}

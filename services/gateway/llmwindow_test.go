package gateway

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The window averages what was measured over its span, and forgets what
// is older.
func TestLLMWindow(t *testing.T) {
	now := time.Unix(1000, 0)
	w := newLLMWindows(func() time.Time { return now })
	require.Nil(t, w.summary("chat"))
	w.add("chat", llmRecord{at: now, ttft: 0.1, tps: 100, prompt: 10, completion: 20})
	now = now.Add(time.Minute)
	w.add("chat", llmRecord{at: now, ttft: 0.3, tps: 300, prompt: 5, completion: 30})
	w.add("chat", llmRecord{at: now, prompt: 1, completion: 1}) // a whole answer: no timings
	st := w.summary("chat")
	require.Equal(t, int64(3), st.Requests)
	require.InDelta(t, 0.2, st.TimeToFirstTokenSeconds, 1e-9)
	require.InDelta(t, 200, st.OutputTokensPerSecond, 1e-9)
	require.Equal(t, int64(16), st.PromptTokens)
	require.Equal(t, int64(51), st.CompletionTokens)
	require.Equal(t, 60.0, st.WindowSeconds, "since the gateway started")

	now = now.Add(4*time.Minute + time.Second) // the first record is over 5 minutes old
	st = w.summary("chat")
	require.Equal(t, int64(2), st.Requests)
	require.Equal(t, llmWindowSpan.Seconds(), st.WindowSeconds)
	now = now.Add(time.Hour)
	require.Nil(t, w.summary("chat"))
	require.Nil(t, w.summary("other"))
}

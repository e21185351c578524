package cli

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	gatewayv1 "github.com/bmaas/bmaas/api/bmaas/gateway/v1"
)

// fakeOpenAI is a gateway's /openai/v1 that records the last request and
// answers a stream of two chunks (then usage), or one answer, or an error.
func fakeOpenAI(t *testing.T, last *map[string]any) *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		require.Equal(t, "Bearer secret", r.Header.Get("Authorization"))
		b, _ := io.ReadAll(r.Body)
		var req map[string]any
		require.NoError(t, json.Unmarshal(b, &req))
		req["path"] = r.URL.Path
		*last = req
		if req["model"] == "missing" {
			w.WriteHeader(http.StatusNotFound)
			_, _ = io.WriteString(w, `{"error":{"message":"model: deployment \"missing\" not found","type":"not_found_error","param":"model","code":"model_not_found"}}`)
			return
		}
		if req["stream"] == true {
			w.Header().Set("Content-Type", "text/event-stream")
			for _, c := range []string{
				`{"choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}`,
				`{"choices":[{"index":0,"delta":{"content":"Elementary,"}}]}`,
				`{"choices":[{"index":0,"delta":{"content":" my dear"},"finish_reason":"length"}]}`,
				`{"choices":[],"usage":{"prompt_tokens":7,"completion_tokens":3,"total_tokens":10}}`,
			} {
				_, _ = io.WriteString(w, ": keep-alive\n\ndata: "+c+"\n\n")
			}
			_, _ = io.WriteString(w, "data: [DONE]\n\n")
			return
		}
		_, _ = io.WriteString(w, `{"id":"cmpl-1","object":"text_completion","choices":[{"index":0,"text":"Elementary."}]}`)
	}))
}

func TestGenerateStreamsAndPrintsJSON(t *testing.T) {
	t.Parallel()
	var last map[string]any
	srv := fakeOpenAI(t, &last)
	defer srv.Close()
	base := []string{"--token", "secret", "generate", "--url", srv.URL}

	out, errOut, err := run(t, &globals{}, append(base, "--deployment", "holmes@2", "--system", "Be brief.", "--temperature", "0",
		"--seed", "7", "--max-tokens", "3", "--stop", "\n\n", "Who?")...)
	require.NoError(t, err)
	require.Equal(t, "Elementary, my dear\n", out)
	require.Contains(t, errOut, "7 prompt + 3 generated tokens")
	require.Equal(t, "/openai/v1/chat/completions", last["path"])
	require.Equal(t, "holmes@2", last["model"])
	require.Equal(t, []any{map[string]any{"role": "system", "content": "Be brief."}, map[string]any{"role": "user", "content": "Who?"}}, last["messages"])
	require.Equal(t, 0.0, last["temperature"])
	require.Equal(t, 7.0, last["seed"])
	require.Equal(t, 3.0, last["max_tokens"])
	require.Equal(t, []any{"\n\n"}, last["stop"])
	require.Equal(t, true, last["stream"])
	require.NotContains(t, last, "top_p", "unset flags are not sent")

	out, _, err = run(t, &globals{}, append([]string{"-o", "json"}, append(base, "--deployment", "holmes", "--completion", "It was")...)...)
	require.NoError(t, err)
	require.Equal(t, "/openai/v1/completions", last["path"])
	require.Equal(t, "It was", last["prompt"])
	require.NotContains(t, last, "stream")
	var doc map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &doc), out)
	require.Equal(t, "cmpl-1", doc["id"])

	_, _, err = run(t, &globals{}, append(base, "--deployment", "missing", "Who?")...)
	require.ErrorContains(t, err, `model: deployment "missing" not found (HTTP 404)`)
	for _, bad := range []struct {
		args []string
		want string
	}{
		{[]string{"Who?"}, "--deployment is required"},
		{[]string{"--deployment", "h", "--top-p", "2", "Who?"}, "--top-p must be in (0, 1]"},
		{[]string{"--deployment", "h", "--completion", "--system", "x", "Who?"}, "--system is for chat"},
		{[]string{"--deployment", "h"}, "give the prompt as one argument"},
	} {
		_, _, err := run(t, &globals{}, append(base, bad.args...)...)
		require.ErrorContains(t, err, bad.want)
	}
	_, _, err = run(t, &globals{}, "generate", "--url", "localhost:8080", "--deployment", "h", "Who?")
	require.ErrorContains(t, err, "--url must start with http://")
	require.True(t, strings.HasPrefix(DefaultURL, "http://"))
}

func TestLLMString(t *testing.T) {
	require.Equal(t, "12 requests in 5m0s: first token after 45ms, 210 tokens/s a stream, 1234 prompt + 5678 completion tokens",
		llmString(&gatewayv1.LLMStats{Requests: 12, WindowSeconds: 300, TimeToFirstTokenSeconds: 0.0451, OutputTokensPerSecond: 210.4,
			PromptTokens: 1234, CompletionTokens: 5678}))
	require.Equal(t, "1 request in 42s: 3 prompt + 4 completion tokens",
		llmString(&gatewayv1.LLMStats{Requests: 1, WindowSeconds: 42.7, PromptTokens: 3, CompletionTokens: 4}))
}

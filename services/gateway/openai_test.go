package gateway

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/bmaas/bmaas/pkg/apierr"
)

// The gateway reads only model and stream; each bad one names its field,
// and a pinned version is rewritten to the deployment's name.
func TestParseOpenAI(t *testing.T) {
	for _, bad := range []struct{ body, field string }{
		{`[1]`, "body"},
		{`not json`, "body"},
		{`{"messages":[]}`, "model"},
		{`{"model":7}`, "model"},
		{`{"model":""}`, "model"},
		{`{"model":"chat@latest"}`, "model"},
		{`{"model":"chat@0"}`, "model"},
		{`{"model":"chat","stream":"yes"}`, "stream"},
	} {
		_, err := parseOpenAI([]byte(bad.body))
		var fe *apierr.FieldError
		require.ErrorAs(t, err, &fe, bad.body)
		require.Equal(t, bad.field, fe.Field, bad.body)
	}
	body := []byte(`{"model":"chat","stream":true,"max_tokens":5}`)
	req, err := parseOpenAI(body)
	require.NoError(t, err)
	require.Equal(t, "chat", req.name)
	require.Empty(t, req.version)
	require.True(t, req.stream)
	require.Equal(t, body, req.body, "sent as it came")

	req, err = parseOpenAI([]byte(`{"model":"chat@3","messages":[{"role":"user","content":"hi"}],"stream":null}`))
	require.NoError(t, err)
	require.Equal(t, "chat", req.name)
	require.Equal(t, "3", req.version)
	require.False(t, req.stream)
	var sent map[string]any
	require.NoError(t, json.Unmarshal(req.body, &sent))
	require.Equal(t, "chat", sent["model"], "the replica serves the deployment's name")
	require.Equal(t, []any{map[string]any{"role": "user", "content": "hi"}}, sent["messages"])
}

// A stream is relayed chunk by chunk: the client reads each event before
// the replica writes the next. A client that goes away cancels the
// replica's request.
func TestRelayStreamsEachChunkAndCancelsOnDisconnect(t *testing.T) {
	next := make(chan struct{})
	cancelled := make(chan struct{})
	replica := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		require.Equal(t, "Bearer tok", r.Header.Get("Authorization"))
		require.Equal(t, "/v1/chat/completions", r.URL.Path)
		w.Header().Set("Content-Type", "text/event-stream")
		for i := 0; ; i++ {
			_, _ = io.WriteString(w, `data: {"choices":[{"delta":{"content":"x"}}]}`+"\n\n")
			w.(http.Flusher).Flush()
			select {
			case <-next:
			case <-r.Context().Done():
				close(cancelled)
				return
			}
		}
	}))
	defer replica.Close()
	s, b := bridgeTo(strings.TrimPrefix(replica.URL, "http://"), "openai")
	o := openAI{s: s}
	gw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		answered, err := o.relay(r.Context(), w, b, "chat/completions", &openAIRequest{name: "m", stream: true, body: []byte(`{"model":"m","stream":true}`)}, nil)
		require.True(t, answered)
		require.NoError(t, err)
	}))
	defer gw.Close()

	resp, err := http.Post(gw.URL, "application/json", strings.NewReader(`{}`))
	require.NoError(t, err)
	require.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))
	rd := bufio.NewReader(resp.Body)
	for i := range 3 {
		line, err := rd.ReadString('\n')
		require.NoError(t, err)
		require.True(t, strings.HasPrefix(line, "data: "), line)
		blank, err := rd.ReadString('\n')
		require.NoError(t, err)
		require.Equal(t, "\n", blank)
		if i < 2 {
			next <- struct{}{} // only now does the replica write the next event
		}
	}
	require.NoError(t, resp.Body.Close())
	select {
	case <-cancelled:
	case <-time.After(5 * time.Second):
		t.Fatal("the replica's request was not cancelled when the client went away")
	}
}

// A replica that refuses the connection is Unavailable (forward tries
// another); its error answers pass through as they came.
func TestRelayErrors(t *testing.T) {
	s, b := bridgeTo("127.0.0.1:1", "openai")
	rec := httptest.NewRecorder()
	answered, err := openAI{s: s}.relay(context.Background(), rec, b, "completions", &openAIRequest{name: "m", body: []byte(`{}`)}, nil)
	require.False(t, answered)
	require.Equal(t, codes.Unavailable, status.Code(err))

	replica := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		require.Equal(t, "rid-1", r.Header.Get("X-Request-Id"), "the replica gets the request's id")
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Request-Id", "the replica's own")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = io.WriteString(w, `{"error":{"message":"max_tokens: too many","type":"invalid_request_error","param":"max_tokens","code":null}}`)
	}))
	defer replica.Close()
	s, b = bridgeTo(strings.TrimPrefix(replica.URL, "http://"), "openai")
	rec = httptest.NewRecorder()
	ctx := context.WithValue(context.Background(), requestIDCtxKey{}, "rid-1")
	answered, err = openAI{s: s}.relay(ctx, rec, b, "completions", &openAIRequest{name: "m", body: []byte(`{}`)}, nil)
	require.True(t, answered)
	require.NoError(t, err)
	require.Equal(t, http.StatusBadRequest, rec.Code)
	require.Contains(t, rec.Body.String(), `"param":"max_tokens"`)
	require.Empty(t, rec.Header().Get("X-Request-Id"), "the gateway's id, not the replica's")
}

// A stream that waits gets SSE comments, its status and headers with the
// first; once stopped, nothing more is written.
func TestKeepAlive(t *testing.T) {
	rec := httptest.NewRecorder()
	ka := startKeepAlive(rec, 10*time.Millisecond)
	require.Eventually(t, func() bool {
		ka.mu.Lock()
		defer ka.mu.Unlock()
		return strings.Count(rec.Body.String(), ": waiting for a replica\n\n") >= 2
	}, 5*time.Second, 5*time.Millisecond)
	require.True(t, ka.stop())
	require.Equal(t, "text/event-stream", rec.Header().Get("Content-Type"))
	n := rec.Body.Len()
	time.Sleep(30 * time.Millisecond)
	require.Equal(t, n, rec.Body.Len(), "nothing after stop")
	require.True(t, ka.stop(), "stop again says the same")

	quiet := httptest.NewRecorder()
	require.False(t, startKeepAlive(quiet, time.Hour).stop(), "stopped before its first comment")
	require.Zero(t, quiet.Body.Len())
	require.False(t, (*keepAlive)(nil).stop())
}

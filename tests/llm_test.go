//go:build integration

package tests

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	gatewayv1 "github.com/bmaas/bmaas/api/bmaas/gateway/v1"
	iamv1 "github.com/bmaas/bmaas/api/bmaas/iam/v1"
	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
	schedulerv1 "github.com/bmaas/bmaas/api/bmaas/scheduler/v1"
	"github.com/bmaas/bmaas/internal/app"
	"github.com/bmaas/bmaas/services/traineragent/endpointkeys"
	"github.com/bmaas/bmaas/tests/harness"
)

// chatBody is a chat completion request with the settings that make the
// text repeatable: greedy, seeded.
func chatBody(model, prompt string, stream bool, extra map[string]any) map[string]any {
	b := map[string]any{"model": model, "messages": []map[string]string{{"role": "user", "content": prompt}},
		"max_tokens": 24, "temperature": 0, "seed": 1}
	if stream {
		b["stream"], b["stream_options"] = true, map[string]bool{"include_usage": true}
	}
	for k, v := range extra {
		b[k] = v
	}
	return b
}

// post sends a JSON body with the token and returns the response.
func post(t *testing.T, url, token string, body any) *http.Response {
	t.Helper()
	b, err := json.Marshal(body)
	require.NoError(t, err)
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, url, bytes.NewReader(b))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	return resp
}

// chatText is the text of a non-streamed chat completion.
func chatText(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", b)
	var out struct {
		Object  string `json:"object"`
		Choices []struct {
			Message struct {
				Content string `json:"content"`
			} `json:"message"`
		} `json:"choices"`
	}
	require.NoError(t, json.Unmarshal(b, &out), "%s", b)
	require.Equal(t, "chat.completion", out.Object)
	require.Len(t, out.Choices, 1)
	return out.Choices[0].Message.Content
}

// streamText reads a streamed chat completion: its text, the count of
// chunks with text, and the completion tokens of its usage.
func streamText(t *testing.T, resp *http.Response) (text string, chunks, completion int) {
	t.Helper()
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.True(t, strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream"), resp.Header.Get("Content-Type"))
	sc := bufio.NewScanner(resp.Body)
	done := false
	for sc.Scan() {
		data, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		if data == "[DONE]" {
			done = true
			break
		}
		var c struct {
			Choices []struct {
				Delta struct {
					Content string `json:"content"`
				} `json:"delta"`
			} `json:"choices"`
			Usage *struct {
				Completion int `json:"completion_tokens"`
			} `json:"usage"`
		}
		require.NoError(t, json.Unmarshal([]byte(data), &c), data)
		for _, ch := range c.Choices {
			if ch.Delta.Content != "" {
				text += ch.Delta.Content
				chunks++
			}
		}
		if c.Usage != nil {
			completion = c.Usage.Completion
		}
	}
	require.NoError(t, sc.Err())
	require.True(t, done, "the stream ends with [DONE]")
	return text, chunks, completion
}

// openAIError reads an OpenAI-shaped error answer: its status and param.
func openAIError(t *testing.T, resp *http.Response) (int, string, string) {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var e struct {
		Error struct {
			Message string  `json:"message"`
			Type    string  `json:"type"`
			Param   *string `json:"param"`
		} `json:"error"`
	}
	require.NoError(t, json.Unmarshal(b, &e), "%s", b)
	require.NotEmpty(t, e.Error.Message, "%s", b)
	require.NotEmpty(t, e.Error.Type, "%s", b)
	param := ""
	if e.Error.Param != nil {
		param = *e.Error.Param
	}
	return resp.StatusCode, param, e.Error.Message
}

// archiveFiles lists the files of a gzipped tar.
func archiveFiles(t *testing.T, data []byte) []string {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(data))
	require.NoError(t, err)
	tr := tar.NewReader(zr)
	var names []string
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return names
		}
		require.NoError(t, err)
		names = append(names, filepath.Base(h.Name))
	}
}

// TestLanguageModelEndToEnd: in bmaas up, examples/llm trains as a
// process job (its validation loss below a uniform guess's), its version
// holds the weights, the tokenizer and the configuration, deploys on the
// llm-torch runtime, and answers /openai/v1/chat/completions streamed and
// not: with a seed at temperature 0 the texts are the same, and the same
// as the replica called directly. The official OpenAI Node client streams
// through the gateway; a client that leaves mid-stream stops the
// replica's generation; bad input gets OpenAI-shaped errors naming the
// field while the replica keeps serving; bmaas generate prints the text;
// the gateway measures the time to first token.
func TestLanguageModelEndToEnd(t *testing.T) {
	t.Parallel()
	if !hasTorch() {
		t.Skip("/usr/bin/python3 lacks torch and onnx (Debian's python3-torch and python3-onnx; .ci/run installs them)")
	}
	if _, err := exec.LookPath("bwrap"); err != nil {
		t.Skip("no bwrap (Debian's bubblewrap; .ci/run installs it)")
	}
	c := harness.Start(t, withFastGateway(), func(cfg *app.Config) {
		cfg.Gateway.StreamKeepAlive = 200 * time.Millisecond
		cfg.Gateway.MaxHeldRequests = 1
	})
	ctx := t.Context()
	sc := schedulerv1.NewSchedulerServiceClient(c.Conn)
	dc := gatewayv1.NewDeploymentServiceClient(c.Conn)

	_, err := runCLI(t, c, "runtime", "create", "-f", "../examples/runtimes/llm-torch/runtime.json", "--code", "../examples/runtimes/llm-torch")
	require.NoError(t, err)
	_, err = c.Registry.CreateModel(ctx, &registryv1.CreateModelRequest{Model: &registryv1.Model{Name: "tiny-gpt"}})
	require.NoError(t, err)
	workdir, err := filepath.Abs("../examples/llm")
	require.NoError(t, err)
	sub, err := sc.SubmitJob(ctx, &schedulerv1.SubmitJobRequest{Spec: &schedulerv1.JobSpec{Model: "tiny-gpt",
		Runtime: &schedulerv1.JobSpec_Process{Process: &schedulerv1.ProcessRuntime{Command: "/usr/bin/python3", Args: []string{"train.py"},
			Workdir: workdir, Hyperparameters: map[string]string{"steps": "60", "n_layer": "2", "n_head": "2", "n_embd": "64",
				"block_size": "256", "batch_size": "8", "eval_interval": "30", "eval_batches": "2"}}}}})
	require.NoError(t, err)
	job := waitJob(t, sc, sub.Job.Id, 5*time.Minute)
	require.Equal(t, schedulerv1.JobState_JOB_STATE_SUCCEEDED, job.State, "reason: %s", job.Reason)
	v, err := c.Registry.GetModelVersion(ctx, &registryv1.GetModelVersionRequest{Model: "tiny-gpt", Version: "latest"})
	require.NoError(t, err)
	require.Equal(t, registryv1.ModelFormat_MODEL_FORMAT_PYTORCH, v.Version.Format)
	require.Equal(t, registryv1.VersionStatus_VERSION_STATUS_READY, v.Version.Status)
	loss, ok := v.Version.Metrics["validation_loss"]
	require.True(t, ok, "metrics: %v", v.Version.Metrics)
	require.Less(t, loss, math.Log(257), "the loss falls below a uniform guess over the 257 tokens")
	files := archiveFiles(t, downloadBytes(t, c.Registry, "tiny-gpt", "latest"))
	for _, f := range []string{"model.pt", "config.json", "tokenizer.json", "gpt.py"} {
		require.Contains(t, files, f)
	}

	_, err = dc.CreateDeployment(ctx, &gatewayv1.CreateDeploymentRequest{Deployment: &gatewayv1.Deployment{
		Name: "holmes", Model: "tiny-gpt@latest", Runtime: "llm-torch", MinReplicas: 1, MaxReplicas: 1,
		Resources: &schedulerv1.Resources{CpuMillis: 250, MemoryBytes: 1 << 30}}})
	require.NoError(t, err)
	var ep *gatewayv1.Endpoint
	eventually(t, 2*time.Minute, "a ready llm-torch replica", func() bool {
		resp, err := c.EtcdClient(t).Get(ctx, endpointkeys.Of("holmes"), clientv3.WithPrefix())
		require.NoError(t, err)
		if len(resp.Kvs) == 0 {
			return false
		}
		ep, err = endpointkeys.Decode(resp.Kvs[0].Value)
		require.NoError(t, err)
		return true
	})
	require.Equal(t, []string{"openai"}, ep.Protocols)

	gw := c.HTTP + "/openai/v1/chat/completions"
	const prompt = "Holmes looked at me and said"
	whole := chatText(t, post(t, gw, c.Token, chatBody("holmes", prompt, false, nil)))
	require.NotEmpty(t, whole)
	streamed, chunks, completion := streamText(t, post(t, gw, c.Token, chatBody("holmes", prompt, true, nil)))
	require.Equal(t, whole, streamed, "streamed and whole texts agree")
	require.Greater(t, chunks, 1)
	require.Positive(t, completion)
	direct := chatText(t, post(t, "http://"+ep.HttpAddress+"/v1/chat/completions", ep.Token, chatBody("holmes", prompt, false, nil)))
	require.Equal(t, whole, direct, "the gateway answers what the replica answers")
	pinned := chatText(t, post(t, gw, c.Token, chatBody("holmes@"+itoa64(v.Version.Version), prompt, false, nil)))
	require.Equal(t, whole, pinned)

	// The official client, streaming.
	node := filepath.Join("openai-node", "node_modules", "openai")
	if _, err := os.Stat(node); err == nil {
		out, err := exec.CommandContext(ctx, "node", "openai-node/chat.mjs", c.HTTP+"/openai/v1", c.Token, "holmes", prompt).CombinedOutput()
		require.NoError(t, err, "%s", out)
		var got struct {
			Chunks int    `json:"chunks"`
			Text   string `json:"text"`
			Finish string `json:"finish"`
			Usage  struct {
				Prompt     int `json:"prompt_tokens"`
				Completion int `json:"completion_tokens"`
				Total      int `json:"total_tokens"`
			} `json:"usage"`
			Models []string `json:"models"`
		}
		require.NoError(t, json.Unmarshal(out, &got), "%s", out)
		require.Greater(t, got.Chunks, 1)
		require.Equal(t, whole, got.Text)
		require.NotEmpty(t, got.Finish)
		require.Positive(t, got.Usage.Prompt)
		require.Equal(t, completion, got.Usage.Completion)
		require.Equal(t, got.Usage.Prompt+got.Usage.Completion, got.Usage.Total)
		require.Contains(t, got.Models, "holmes")
	} else {
		t.Logf("the OpenAI Node client is not installed (cd tests/openai-node && npm ci): skipped")
	}

	// A client that leaves mid-stream stops the replica's generation: the
	// running gauge drops and the choice counts as aborted, not finished.
	metric := func(prefix string) string {
		resp, err := http.Get("http://" + ep.HttpAddress + "/metrics")
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(line, prefix) {
				return line[strings.LastIndex(line, " ")+1:]
			}
		}
		return "0"
	}
	const running, aborted = "vllm:num_requests_running", `vllm:request_success_total{model_name="holmes",finished_reason="abort"}`
	require.Equal(t, "0", metric(aborted))
	// A raw completion (no chat turn to stop at), as long as the context
	// allows.
	long := post(t, c.HTTP+"/openai/v1/completions", c.Token, map[string]any{"model": "holmes", "prompt": "Holmes",
		"max_tokens": 240, "temperature": 0, "stream": true})
	require.Equal(t, http.StatusOK, long.StatusCode)
	rd := bufio.NewReader(long.Body)
	_, err = rd.ReadString('\n')
	require.NoError(t, err)
	eventually(t, 5*time.Second, "the generation running", func() bool { return metric(running) == "1" })
	require.NoError(t, long.Body.Close())
	left := time.Now()
	eventually(t, 5*time.Second, "the generation stopped", func() bool { return metric(running) == "0" })
	t.Logf("generation stopped %s after the client left", time.Since(left).Round(time.Millisecond))
	require.Equal(t, "1", metric(aborted), "cut short, not finished")

	// Bad input: the OpenAI error shape, the field named; the replica
	// keeps serving.
	for _, bad := range []struct {
		body          map[string]any
		status        int
		param, gotMsg string
	}{
		{chatBody("nobody", prompt, false, nil), http.StatusNotFound, "model", "nobody"},
		{chatBody("holmes", prompt, false, map[string]any{"max_tokens": 100000}), http.StatusBadRequest, "max_tokens", "context"},
		{chatBody("holmes", prompt, false, map[string]any{"messages": "hello"}), http.StatusBadRequest, "messages", ""},
		{chatBody("holmes", prompt, false, map[string]any{"logit_bias": map[string]int{"1": 5}}), http.StatusBadRequest, "logit_bias", ""},
		{chatBody("holmes", strings.Repeat("Watson! ", 200), false, nil), http.StatusBadRequest, "messages", "context"},
	} {
		code, param, msg := openAIError(t, post(t, gw, c.Token, bad.body))
		require.Equal(t, bad.status, code, msg)
		require.Equal(t, bad.param, param, msg)
		require.Contains(t, msg, bad.gotMsg)
	}
	require.Equal(t, whole, chatText(t, post(t, gw, c.Token, chatBody("holmes", prompt, false, nil))), "still serving")

	// The CLI, and what the gateway measured.
	out, err := runCLI(t, c, "generate", "--url", c.HTTP, "--deployment", "holmes", "--temperature", "0", "--seed", "1",
		"--max-tokens", "24", prompt)
	require.NoError(t, err)
	require.Equal(t, whole+"\n", out)
	code, body := httpDo(t, c, http.MethodGet, "/metrics", nil)
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, string(body), `bmaas_llm_time_to_first_token_seconds_count{deployment="holmes"}`)
	require.Contains(t, string(body), `bmaas_llm_completion_tokens_total{deployment="holmes"}`)
	out, err = runCLI(t, c, "deploy", "get", "holmes")
	require.NoError(t, err)
	require.Regexp(t, `LLM +\d+ requests in \d+[ms].*: first token after \d+(\.\d+)?m?s, \d+ tokens/s a stream, \d+ prompt \+ \d+ completion tokens`, out)
	code, body = httpDo(t, c, http.MethodGet, "/openai/v1/models", nil)
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, string(body), `"id":"holmes"`)

	// A cold start: a stream to a deployment at zero is held with SSE
	// comments until a replica is ready, then streams; a request beyond
	// gateway.max-held-requests (1 here) is refused with Retry-After.
	_, err = dc.CreateDeployment(ctx, &gatewayv1.CreateDeploymentRequest{Deployment: &gatewayv1.Deployment{
		Name: "holmes-cold", Model: "tiny-gpt@latest", Runtime: "llm-torch", MinReplicas: 0, MaxReplicas: 1, ScaleToZeroSeconds: 1,
		Resources: &schedulerv1.Resources{CpuMillis: 250, MemoryBytes: 1 << 30}}})
	require.NoError(t, err)
	eventually(t, 30*time.Second, "idle at zero", func() bool {
		d, err := dc.GetDeployment(ctx, &gatewayv1.GetDeploymentRequest{Name: "holmes-cold"})
		require.NoError(t, err)
		return d.Deployment.GetState() == "IDLE"
	})
	cold := post(t, gw, c.Token, chatBody("holmes-cold", prompt, true, nil))
	require.Equal(t, http.StatusOK, cold.StatusCode)
	crd := bufio.NewReader(cold.Body)
	first, err := crd.ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, ": waiting for a replica\n", first, "a keep-alive while the replica starts")
	refused := post(t, gw, c.Token, chatBody("holmes-cold", prompt, false, nil))
	code, _, msg := openAIError(t, refused)
	require.Equal(t, http.StatusTooManyRequests, code, msg)
	require.Equal(t, "1", refused.Header.Get("Retry-After"))
	coldText, coldChunks, _ := streamText(t, &http.Response{StatusCode: http.StatusOK, Header: cold.Header,
		Body: io.NopCloser(crd)})
	require.NoError(t, cold.Body.Close())
	require.Equal(t, whole, coldText, "the held stream gets the same text")
	require.Greater(t, coldChunks, 1)

	// The project's quota of language-model tokens a minute: once used,
	// requests are refused (429) until the minute passes.
	_, err = iamv1.NewIAMServiceClient(c.Conn).UpdateProject(ctx, &iamv1.UpdateProjectRequest{
		Project:    &iamv1.Project{Name: "default", Quota: &iamv1.Quota{LlmTokensPerMinute: int64(completion)}},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"quota.llm_tokens_per_minute"}}})
	require.NoError(t, err)
	eventually(t, 10*time.Second, "the quota refuses", func() bool {
		resp := post(t, gw, c.Token, chatBody("holmes", prompt, false, nil))
		if resp.StatusCode == http.StatusOK {
			_ = resp.Body.Close()
			return false
		}
		code, _, msg := openAIError(t, resp)
		require.Equal(t, http.StatusTooManyRequests, code, msg)
		require.Contains(t, msg, "over quota: project default used")
		return true
	})
}

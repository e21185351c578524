package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"
)

// DefaultURL is the HTTP address of `bmaas up` by default.
const DefaultURL = "http://127.0.0.1:8080"

type generateFlags struct {
	deployment  string
	url         string
	system      string
	maxTokens   int
	temperature float64
	topP        float64
	seed        int64
	stop        []string
	completion  bool
	noStream    bool
}

func generateCommand(g *globals) *cobra.Command {
	var f generateFlags
	cmd := &cobra.Command{
		Use:   "generate --deployment NAME [flags] PROMPT",
		Short: "Generate text with a deployed language model, streamed to the terminal",
		Long: "Send PROMPT to a deployment whose runtime speaks the OpenAI API, through the gateway's\n" +
			"OpenAI-compatible routes (--url, or BMAAS_URL: the HTTP address, with the same --token),\n" +
			"as a chat message (or a raw completion with --completion), and print the text as it is\n" +
			"generated. The token counts and timings go to standard error. -o json prints the whole\n" +
			"answer instead (not streamed).",
		Example: "  bmaas generate --deployment tiny-gpt \"Holmes looked at me and said\"\n" +
			"  bmaas generate --deployment tiny-gpt@3 --temperature 0 --max-tokens 64 --completion \"It was\"",
		Args: func(cmd *cobra.Command, a []string) error {
			if len(a) != 1 || a[0] == "" {
				return usageErrorf("give the prompt as one argument (quote it)")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, a []string) error {
			if f.deployment == "" {
				return usageErrorf("--deployment is required: the deployment that serves the model")
			}
			return f.run(cmd, g, a[0])
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.deployment, "deployment", "", "the deployment (NAME, or NAME@VERSION to pin a version)")
	fl.StringVar(&f.url, "url", envOr("BMAAS_URL", DefaultURL), "HTTP address of the gateway (env BMAAS_URL)")
	fl.StringVar(&f.system, "system", "", "a system message before the prompt (chat only)")
	fl.IntVar(&f.maxTokens, "max-tokens", 0, "most tokens to generate (0: the runtime's default)")
	fl.Float64Var(&f.temperature, "temperature", -1, "sampling temperature; 0 is greedy (default: the runtime's)")
	fl.Float64Var(&f.topP, "top-p", -1, "nucleus sampling's probability mass (default: the runtime's)")
	fl.Int64Var(&f.seed, "seed", -1, "seed of the sampling, for repeatable text (default: none)")
	fl.StringArrayVar(&f.stop, "stop", nil, "stop before this text (repeatable, up to 4)")
	fl.BoolVar(&f.completion, "completion", false, "a raw completion of the prompt, not a chat message")
	fl.BoolVar(&f.noStream, "no-stream", false, "wait for the whole answer")
	return cmd
}

// request is the OpenAI API request body of the flags.
func (f *generateFlags) request(prompt string, stream bool) (route string, body []byte, err error) {
	req := map[string]any{"model": f.deployment}
	if f.completion {
		if f.system != "" {
			return "", nil, usageErrorf("--system is for chat; --completion takes the prompt alone")
		}
		route, req["prompt"] = "completions", prompt
	} else {
		msgs := []map[string]string{}
		if f.system != "" {
			msgs = append(msgs, map[string]string{"role": "system", "content": f.system})
		}
		route, req["messages"] = "chat/completions", append(msgs, map[string]string{"role": "user", "content": prompt})
	}
	switch {
	case f.maxTokens < 0:
		return "", nil, usageErrorf("--max-tokens must not be negative, got %d", f.maxTokens)
	case f.maxTokens > 0:
		req["max_tokens"] = f.maxTokens
	}
	if f.temperature >= 0 {
		req["temperature"] = f.temperature
	}
	if f.topP >= 0 {
		if f.topP == 0 || f.topP > 1 {
			return "", nil, usageErrorf("--top-p must be in (0, 1], got %g", f.topP)
		}
		req["top_p"] = f.topP
	}
	if f.seed >= 0 {
		req["seed"] = f.seed
	}
	if len(f.stop) > 4 {
		return "", nil, usageErrorf("--stop: at most 4, got %d", len(f.stop))
	}
	if len(f.stop) > 0 {
		req["stop"] = f.stop
	}
	if stream {
		req["stream"] = true
		req["stream_options"] = map[string]bool{"include_usage": true}
	}
	body, err = json.Marshal(req)
	return route, body, err
}

func (f *generateFlags) run(cmd *cobra.Command, g *globals, prompt string) error {
	stream := !f.noStream && g.output == "table"
	route, body, err := f.request(prompt, stream)
	if err != nil {
		return err
	}
	if err := g.settle(); err != nil {
		return err
	}
	url := g.url(cmd, f.url)
	base := strings.TrimSuffix(url, "/")
	if !strings.HasPrefix(base, "http://") && !strings.HasPrefix(base, "https://") {
		return usageErrorf("--url must start with http:// or https://, got %q", url)
	}
	client := &http.Client{}
	if strings.HasPrefix(base, "https://") || g.tls.ca != "" {
		cfg, err := g.tls.config()
		if err != nil {
			return err
		}
		client.Transport = &http.Transport{TLSClientConfig: cfg}
	}
	ctx := cmd.Context()
	if g.timeout > 0 && !stream {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, g.timeout)
		defer cancel()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/openai/v1/"+route, bytes.NewReader(body))
	if err != nil {
		return usageErrorf("--url: %v", err)
	}
	req.Header.Set("Content-Type", "application/json")
	if g.token != "" {
		req.Header.Set("Authorization", "Bearer "+g.token)
	}
	if g.project != "" {
		req.Header.Set("Bmaas-Project", g.project)
	}
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("the gateway at %s did not answer (--url, or BMAAS_URL): %w", base, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return openAIError(resp)
	}
	if !stream {
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			return err
		}
		if g.output != "table" {
			var v any
			if err := json.Unmarshal(b, &v); err != nil {
				return fmt.Errorf("the gateway answered no JSON: %w", err)
			}
			return printValue(cmd.OutOrStdout(), g.output, v)
		}
		var out struct {
			Choices []struct {
				Text    string `json:"text"`
				Message struct {
					Content string `json:"content"`
				} `json:"message"`
			} `json:"choices"`
		}
		if err := json.Unmarshal(b, &out); err != nil || len(out.Choices) == 0 {
			return fmt.Errorf("the gateway answered no choice: %s", b)
		}
		_, err = fmt.Fprintln(cmd.OutOrStdout(), out.Choices[0].Text+out.Choices[0].Message.Content)
		return err
	}
	return printStream(cmd.OutOrStdout(), cmd.ErrOrStderr(), resp.Body, start)
}

// printStream prints the text of a server-sent event stream of OpenAI
// chunks as it comes, then the usage and timings to errw.
func printStream(w, errw io.Writer, r io.Reader, start time.Time) error {
	var (
		first  time.Duration
		chunks int
		usage  struct {
			Prompt     int `json:"prompt_tokens"`
			Completion int `json:"completion_tokens"`
		}
	)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	done := false
	for sc.Scan() {
		data, ok := strings.CutPrefix(sc.Text(), "data:")
		if !ok {
			continue // comments, blank lines between events
		}
		data = strings.TrimSpace(data)
		if data == "[DONE]" {
			done = true
			break
		}
		var ev struct {
			Choices []struct {
				Text  string `json:"text"`
				Delta struct {
					Content string `json:"content"`
				} `json:"delta"`
			} `json:"choices"`
			Usage *json.RawMessage `json:"usage"`
			Error *struct {
				Message string `json:"message"`
			} `json:"error"`
		}
		if err := json.Unmarshal([]byte(data), &ev); err != nil {
			return fmt.Errorf("an event that is not JSON: %q", data)
		}
		if ev.Error != nil {
			fmt.Fprintln(w)
			return errors.New(ev.Error.Message)
		}
		if ev.Usage != nil && string(*ev.Usage) != "null" {
			_ = json.Unmarshal(*ev.Usage, &usage)
		}
		for _, c := range ev.Choices {
			text := c.Text + c.Delta.Content
			if text == "" {
				continue
			}
			if chunks == 0 {
				first = time.Since(start)
			}
			chunks++
			if _, err := io.WriteString(w, text); err != nil {
				return err
			}
		}
	}
	fmt.Fprintln(w)
	if err := sc.Err(); err != nil {
		return fmt.Errorf("the stream broke off: %w", err)
	}
	if !done {
		return errors.New("the stream ended without [DONE]")
	}
	total := time.Since(start)
	line := fmt.Sprintf("%d prompt + %d generated tokens; first token after %s, %s in all",
		usage.Prompt, usage.Completion, first.Round(time.Millisecond), total.Round(time.Millisecond))
	if usage.Completion > 1 && total > first {
		line += fmt.Sprintf(", %.0f tokens/s after the first", float64(usage.Completion-1)/(total-first).Seconds())
	}
	_, _ = fmt.Fprintln(errw, line)
	return nil
}

// openAIError is the error of an OpenAI-shaped error answer.
func openAIError(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var e struct {
		Error struct {
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(b, &e) == nil && e.Error.Message != "" {
		return fmt.Errorf("%s (HTTP %d)", e.Error.Message, resp.StatusCode)
	}
	return fmt.Errorf("HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(b)))
}

// printValue prints a JSON answer as --output asks: indented JSON, YAML,
// or its id.
func printValue(w io.Writer, format string, v any) error {
	switch format {
	case "yaml":
		b, err := yaml.Marshal(v)
		if err != nil {
			return err
		}
		_, err = w.Write(b)
		return err
	case "id":
		if m, ok := v.(map[string]any); ok {
			_, err := fmt.Fprintln(w, m["id"])
			return err
		}
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

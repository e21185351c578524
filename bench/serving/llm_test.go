package serving

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	gatewayv1 "github.com/bmaas/bmaas/api/bmaas/gateway/v1"
	"github.com/bmaas/bmaas/internal/app"
	"github.com/bmaas/bmaas/pkg/runtimes"
	"github.com/bmaas/bmaas/services/traineragent/endpointkeys"
	"github.com/bmaas/bmaas/tests/harness"
)

// BenchmarkLLM measures the llm-torch example runtime behind the gateway's
// OpenAI routes, on a small GPT with random weights (4 layers, 256 wide,
// a context of 1,024 bytes: what matters is the work per token, not the
// text):
//
//   - prefix routing against round robin over two replicas, on requests in
//     groups that share a long system prompt (8 groups of 6, each prompt
//     about 720 tokens, each replica's prefix cache holding about 6 of
//     them, the requests in a random order): time to first token, p50
//     and p95, and the replicas' prefix
//     cache hit rate. Each policy runs on fresh replicas, with the same
//     prompts in the same order.
//   - the gateway's streaming overhead: time to first token and the time
//     between tokens, through the gateway against the replica called
//     directly, one stream at a time.
//
// The replicas are started as the agent starts them and written into etcd
// as the deployments' replicas; the platform runs without a trainer agent.
//
//	go test -run '^$' -bench LLM -benchtime 1x ./bench/serving/
func BenchmarkLLM(b *testing.B) {
	if exec.Command(python, "-c", "import torch").Run() != nil {
		b.Skip(python + " lacks torch (Debian's python3-torch)")
	}
	modelDir := b.TempDir()
	if out, err := exec.Command(python, "-c", `
import sys, torch
sys.path.insert(0, "../../examples/llm")
import gpt
torch.manual_seed(0)
gpt.save(gpt.GPT(gpt.Config(block_size=1024, n_layer=4, n_head=4, n_embd=256)), sys.argv[1])
`, modelDir).CombinedOutput(); err != nil {
		b.Fatalf("a model: %v\n%s", err, out)
	}
	c := harness.Start(b, func(cfg *app.Config) {
		cfg.Targets = slices.DeleteFunc(slices.Clone(cfg.Targets), func(s string) bool { return s == app.TargetTrainerAgent })
	})
	v := standInVersion(b, c)
	const token = "bench-token"
	// deploy starts n llm-torch replicas serving name, registers them as
	// the deployment's, and returns their addresses and a stop.
	deploy := func(name string, routing gatewayv1.Routing, n int, params map[string]string) ([]string, func()) {
		dc := gatewayv1.NewDeploymentServiceClient(c.Conn)
		if _, err := dc.CreateDeployment(context.Background(), &gatewayv1.CreateDeploymentRequest{Deployment: &gatewayv1.Deployment{
			Name: name, Model: "standin@" + strconv.FormatInt(v, 10), MinReplicas: 1, MaxReplicas: 1, Routing: routing}}); err != nil {
			b.Fatal(err)
		}
		var addrs []string
		var stops []func()
		for i := range n {
			port := freePort(b)
			stops = append(stops, startRuntime(b, "llm-torch", runtimes.Vars{ModelDir: modelDir, ModelName: name, ModelVersion: 1,
				HTTPPort: port, GRPCPort: freePort(b), Token: token, Params: params}))
			addr := fmt.Sprintf("127.0.0.1:%d", port)
			addrs = append(addrs, addr)
			ep := &gatewayv1.Endpoint{Deployment: name, Replica: fmt.Sprintf("%s-%d", name, i), Version: v, Token: token,
				Address: addr, HttpAddress: addr, Protocols: []string{"openai"}}
			val, err := proto.Marshal(ep)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := c.EtcdClient(b).Put(context.Background(), endpointkeys.Key(name, ep.Replica), string(val)); err != nil {
				b.Fatal(err)
			}
		}
		poll(b, name+" routed", func() bool {
			_, err := streamChat(c.HTTP+"/openai/v1", c.Token, name, "", "hello", 1)
			return err == nil
		})
		return addrs, func() {
			for _, s := range stops {
				s()
			}
		}
	}

	for _, r := range []struct {
		name    string
		routing gatewayv1.Routing
	}{{"round-robin", gatewayv1.Routing_ROUTING_ROUND_ROBIN}, {"prefix", gatewayv1.Routing_ROUTING_PREFIX}} {
		b.Run("shared-prefixes-"+r.name, func(b *testing.B) {
			dep := "llm-" + r.name
			addrs, stop := deploy(dep, r.routing, 2, map[string]string{"max_prefix_cache_tokens": "4608"})
			defer stop()
			q0, h0 := prefixCounts(b, addrs)
			ttft := sharedPrefixLoad(b, c.HTTP+"/openai/v1", c.Token, dep, rand.New(rand.NewPCG(7, 1)))
			q1, h1 := prefixCounts(b, addrs)
			reportTTFT(b, ttft, nil)
			b.ReportMetric(100*(h1-h0)/max(q1-q0, 1), "prefix-hit-%")
		})
	}

	b.Run("streaming-overhead", func(b *testing.B) {
		addrs, stop := deploy("llm-stream", gatewayv1.Routing_ROUTING_UNSPECIFIED, 1, map[string]string{})
		defer stop()
		for _, via := range []struct{ name, base, token string }{
			{"direct", "http://" + addrs[0] + "/v1", token}, {"gateway", c.HTTP + "/openai/v1", c.Token},
		} {
			b.Run(via.name, func(b *testing.B) {
				var ttft, itl []time.Duration
				for i := range 24 {
					s, err := streamChat(via.base, via.token, "llm-stream", "", fmt.Sprintf("Tell me story %d.", i), 64)
					if err != nil {
						b.Fatal(err)
					}
					ttft = append(ttft, s.ttft)
					itl = append(itl, s.gaps...)
				}
				reportTTFT(b, ttft, itl)
			})
		}
	})
}

// streamed is what a client saw of one stream.
type streamed struct {
	ttft time.Duration
	gaps []time.Duration
}

var benchClient = restClient()

// streamChat streams one greedy chat completion and times its chunks.
func streamChat(base, token, model, system, user string, maxTokens int) (streamed, error) {
	msgs := []map[string]string{}
	if system != "" {
		msgs = append(msgs, map[string]string{"role": "system", "content": system})
	}
	msgs = append(msgs, map[string]string{"role": "user", "content": user})
	body, _ := json.Marshal(map[string]any{"model": model, "messages": msgs, "max_tokens": maxTokens, "temperature": 0,
		"stream": true})
	req, _ := http.NewRequest(http.MethodPost, base+"/chat/completions", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	start := time.Now()
	resp, err := benchClient.Do(req)
	if err != nil {
		return streamed{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return streamed{}, fmt.Errorf("status %d: %s", resp.StatusCode, b)
	}
	var s streamed
	last := time.Time{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		data, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok || data == "[DONE]" || !strings.Contains(data, `"content":"`) || strings.Contains(data, `"content":""`) {
			continue
		}
		now := time.Now()
		if last.IsZero() {
			s.ttft = now.Sub(start)
		} else {
			s.gaps = append(s.gaps, now.Sub(last))
		}
		last = now
	}
	return s, sc.Err()
}

// sharedPrefixLoad sends 8 groups of 6 requests, each group sharing a
// system prompt of about 700 bytes, two at a time, in a random order; it
// returns the times to first token.
func sharedPrefixLoad(b *testing.B, base, token, model string, rng *rand.Rand) []time.Duration {
	words := strings.Fields("the of and to a in that it was his he I with you my as had for at which but is her me be not")
	systems := make([]string, 8)
	for g := range systems {
		var sb strings.Builder
		for sb.Len() < 700 {
			sb.WriteString(words[rng.IntN(len(words))])
			sb.WriteByte(' ')
		}
		systems[g] = sb.String()
	}
	type job struct{ system, user string }
	var jobs []job
	for i := range 6 {
		for g := range systems {
			jobs = append(jobs, job{systems[g], fmt.Sprintf("Question %d of group %d?", i, g)})
		}
	}
	// In the order users would send them: at random.
	rng.Shuffle(len(jobs), func(i, j int) { jobs[i], jobs[j] = jobs[j], jobs[i] })
	var (
		mu   sync.Mutex
		ttft []time.Duration
		wg   sync.WaitGroup
	)
	ch := make(chan job)
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range ch {
				s, err := streamChat(base, token, model, j.system, j.user, 4)
				if err != nil {
					b.Error(err)
					continue
				}
				mu.Lock()
				ttft = append(ttft, s.ttft)
				mu.Unlock()
			}
		}()
	}
	for _, j := range jobs {
		ch <- j
	}
	close(ch)
	wg.Wait()
	return ttft
}

// prefixCounts sums the replicas' prefix cache queries and hits (tokens).
func prefixCounts(b *testing.B, addrs []string) (queries, hits float64) {
	for _, a := range addrs {
		queries += promValue(b, "http://"+a, "vllm:prefix_cache_queries_total")
		hits += promValue(b, "http://"+a, "vllm:prefix_cache_hits_total")
	}
	return queries, hits
}

func reportTTFT(b *testing.B, ttft, itl []time.Duration) {
	pct := func(xs []time.Duration, q float64) float64 {
		if len(xs) == 0 {
			return 0
		}
		s := slices.Clone(xs)
		slices.Sort(s)
		return float64(s[min(len(s)-1, int(q*float64(len(s))))].Microseconds()) / 1e3
	}
	b.ReportMetric(pct(ttft, .5), "ttft-p50-ms")
	b.ReportMetric(pct(ttft, .95), "ttft-p95-ms")
	if itl != nil {
		b.ReportMetric(pct(itl, .5), "itl-p50-ms")
		b.ReportMetric(pct(itl, .95), "itl-p95-ms")
	}
}

package serving

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/bmaas/bmaas/api/inference"
)

// result is one closed-loop load: throughput and latency percentiles.
type result struct {
	qps      float64
	p50, p95 time.Duration
	errors   int
	// cores is the CPU the whole process used, in cores.
	cores float64
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// load keeps conc calls in flight for d and measures them.
func load(conc int, d time.Duration, call func() error) result {
	var (
		mu   sync.Mutex
		all  []time.Duration
		errs int
		wg   sync.WaitGroup
	)
	// Warm up: connections, pools, JIT-free but caches and batchers.
	for range 50 {
		_ = call()
	}
	cpu0 := cpuTime()
	start := time.Now()
	end := start.Add(d)
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lat := make([]time.Duration, 0, 1<<14)
			e := 0
			for {
				t0 := time.Now()
				if t0.After(end) {
					break
				}
				if call() != nil {
					e++
				}
				lat = append(lat, time.Since(t0))
			}
			mu.Lock()
			all, errs = append(all, lat...), errs+e
			mu.Unlock()
		}()
	}
	wg.Wait()
	el := time.Since(start)
	cores := (cpuTime() - cpu0).Seconds() / el.Seconds()
	slices.Sort(all)
	pct := func(q float64) time.Duration {
		if len(all) == 0 {
			return 0
		}
		return all[min(len(all)-1, int(q*float64(len(all))))]
	}
	return result{qps: float64(len(all)) / el.Seconds(), p50: pct(0.5), p95: pct(0.95), errors: errs, cores: cores}
}

func (r result) report(b *testing.B) {
	b.ReportMetric(r.qps, "req/s")
	b.ReportMetric(float64(r.p50.Nanoseconds())/1e3, "p50-µs")
	b.ReportMetric(float64(r.p95.Nanoseconds())/1e3, "p95-µs")
	b.ReportMetric(r.cores, "cpu-cores")
	if r.errors > 0 {
		b.Errorf("%d failed requests", r.errors)
	}
}

// echo answers every ModelInfer with a fixed response: a raw grpc-go
// server that does no work, with the model's own payload.
type echo struct {
	inference.UnimplementedGRPCInferenceServiceServer
	resp *inference.ModelInferResponse
}

func (e *echo) ModelInfer(context.Context, *inference.ModelInferRequest) (*inference.ModelInferResponse, error) {
	return e.resp, nil
}

// startEcho serves e on a loopback port and returns a client.
func startEcho(b *testing.B, resp *inference.ModelInferResponse) inference.GRPCInferenceServiceClient {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	s := grpc.NewServer()
	inference.RegisterGRPCInferenceServiceServer(s, &echo{resp: resp})
	go func() { _ = s.Serve(lis) }()
	b.Cleanup(s.Stop)
	return dial(b, lis.Addr().String())
}

func dial(b *testing.B, addr string) inference.GRPCInferenceServiceClient {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = conn.Close() })
	return inference.NewGRPCInferenceServiceClient(conn)
}

// restClient keeps a connection per call in flight, as a load balancer
// in front of the gateway would.
func restClient() *http.Client {
	return &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 128, MaxConnsPerHost: 128}}
}

// restPost POSTs a JSON body to url (with a bearer token when token is
// set) and reads the whole answer; any status but 200 is an error.
func restPost(hc *http.Client, url, token string, body []byte) func() error {
	return func() error {
		req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		r, err := hc.Do(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, r.Body)
		_ = r.Body.Close()
		if r.StatusCode != http.StatusOK {
			return fmt.Errorf("status %d", r.StatusCode)
		}
		return nil
	}
}

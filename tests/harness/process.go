package harness

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/bmaas/bmaas/internal/testenv"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// Binary builds cmd/bmaas once per test binary and returns its path.
// What runs it is an integration test (testenv.RequireIntegration).
func Binary(t testing.TB) string {
	t.Helper()
	testenv.RequireIntegration(t)
	buildOnce.Do(func() {
		root, err := moduleRoot()
		if err != nil {
			buildErr = err
			return
		}
		dir, err := os.MkdirTemp("", "bmaas-bin-")
		if err == nil {
			// The agent runs it as the sandbox's user (replicas).
			err = os.Chmod(dir, 0o755)
		}
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "bmaas")
		cmd := exec.Command("go", "build", "-o", binPath, "./cmd/bmaas")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && bytes.Contains(b, []byte("module github.com/bmaas/bmaas\n")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("module root not found")
		}
		dir = parent
	}
}

// FreeAddr returns a free 127.0.0.1 address.
func FreeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// Process is a bmaas binary running as a separate OS process.
type Process struct {
	Cmd     *exec.Cmd
	GRPC    string
	HTTP    string
	out     *testenv.Buffer
	exited  chan struct{}
	waitErr error
}

// StartProcess runs `bmaas <args...> --grpc-addr A --http-addr B` and
// waits until /readyz answers 200. A probed free port can be taken by
// another process before bmaas binds it; such a start is retried.
func StartProcess(t testing.TB, args ...string) *Process {
	t.Helper()
	testenv.RequireIntegration(t)
	for attempt := 1; ; attempt++ {
		p, retry := startProcess(t, attempt < 4, args...)
		if !retry {
			return p
		}
	}
}

func startProcess(t testing.TB, mayRetry bool, args ...string) (*Process, bool) {
	t.Helper()
	p := &Process{GRPC: FreeAddr(t), HTTP: FreeAddr(t), out: &testenv.Buffer{}}
	args = append(args, "--grpc-addr", p.GRPC, "--http-addr", p.HTTP)
	p.Cmd = exec.Command(Binary(t), args...)
	p.Cmd.Stdout, p.Cmd.Stderr = p.out, p.out
	p.Cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.Cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p.exited = make(chan struct{})
	go func() {
		p.waitErr = p.Cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		p.Kill()
		if t.Failed() {
			t.Logf("output of bmaas %s:\n%s", strings.Join(args, " "), p.out.String())
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + p.HTTP + "/readyz")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p, false
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("bmaas %s not ready after 30s:\n%s", strings.Join(args, " "), p.out.String())
		}
		select {
		case <-p.exited:
			if mayRetry && strings.Contains(p.out.String(), "address already in use") {
				return nil, true
			}
			t.Fatalf("bmaas %s exited: %v\n%s", strings.Join(args, " "), p.waitErr, p.out.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Kill sends SIGKILL and waits.
func (p *Process) Kill() {
	select {
	case <-p.exited:
		return
	default:
	}
	_ = p.Cmd.Process.Kill()
	<-p.exited
}

// Interrupt sends SIGINT (Ctrl-C) and waits for the exit.
func (p *Process) Interrupt() error {
	_ = p.Cmd.Process.Signal(os.Interrupt)
	<-p.exited
	return p.waitErr
}

// Output is what the process printed.
func (p *Process) Output() string { return p.out.String() }

// RSS is the process's resident memory in bytes.
func (p *Process) RSS(t testing.TB) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.Cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

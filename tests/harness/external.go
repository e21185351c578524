package harness

import (
	"net"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// External is an etcd or NATS server run from its own binary.
type External struct {
	Cmd *exec.Cmd
	URL string
	out *syncBuffer
}

func startExternal(t testing.TB, bin, url, addr string, args ...string) *External {
	t.Helper()
	path, err := exec.LookPath(bin)
	if err != nil {
		t.Skipf("%s is not installed (Debian's etcd-server and nats-server packages provide it; .ci/run installs them)", bin)
	}
	e := &External{URL: url, out: &syncBuffer{}}
	e.Cmd = exec.Command(path, args...)
	e.Cmd.Stdout, e.Cmd.Stderr = e.out, e.out
	e.Cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := e.Cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = e.Cmd.Process.Kill()
		_ = e.Cmd.Wait()
		if t.Failed() {
			t.Logf("%s output:\n%s", bin, e.out.String())
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			_ = c.Close()
			return e
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not listening on %s:\n%s", bin, addr, e.out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ExternalEtcd starts Debian's etcd as a separate process.
func ExternalEtcd(t testing.TB) *External {
	t.Helper()
	client, peer := FreeAddr(t), FreeAddr(t)
	return startExternal(t, "etcd", "http://"+client, client,
		"--name", "ext", "--data-dir", t.TempDir(),
		"--listen-client-urls", "http://"+client, "--advertise-client-urls", "http://"+client,
		"--listen-peer-urls", "http://"+peer, "--initial-advertise-peer-urls", "http://"+peer,
		"--initial-cluster", "ext=http://"+peer, "--heartbeat-interval", "10", "--election-timeout", "100")
}

// ExternalNATS starts Debian's nats-server with JetStream as a separate process.
func ExternalNATS(t testing.TB) *External {
	t.Helper()
	addr := FreeAddr(t)
	host, port, _ := net.SplitHostPort(addr)
	return startExternal(t, "nats-server", "nats://"+addr, addr, "-js", "-a", host, "-p", port, "-sd", t.TempDir())
}

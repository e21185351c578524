package harness

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/bmaas/bmaas/internal/testenv"
	"github.com/bmaas/bmaas/pkg/pki"
)

// External is an etcd or NATS server run from its own binary.
type External struct {
	Cmd *exec.Cmd
	URL string
	out *testenv.Buffer
}

func startExternal(t testing.TB, bin, url, addr string, args ...string) *External {
	t.Helper()
	testenv.RequireIntegration(t)
	path, err := exec.LookPath(bin)
	if err != nil {
		t.Skipf("%s is not installed (Debian's etcd-server and nats-server packages provide it; .ci/run installs them)", bin)
	}
	e := &External{URL: url, out: &testenv.Buffer{}}
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

// Secure is what a client of a secured external server needs: the CA of
// its certificate, a client certificate, and a user and password file.
type Secure struct {
	CA, Cert, Key      string
	User, PasswordFile string
}

// securePKI writes a CA, a server certificate for 127.0.0.1 and a client
// certificate into dir.
func securePKI(t testing.TB, dir, name string) (s Secure, serverCert, serverKey string) {
	t.Helper()
	ca, err := pki.NewCA(name+"-ca", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := ca.Issue(pki.Leaf{CommonName: name, Hosts: []string{"127.0.0.1", "localhost"}, Server: true, Client: true, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	cli, err := ca.Issue(pki.Leaf{CommonName: "bmaas", Client: true, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	s = Secure{CA: filepath.Join(dir, "ca.crt"), Cert: filepath.Join(dir, "client.crt"), Key: filepath.Join(dir, "client.key"),
		PasswordFile: filepath.Join(dir, "password")}
	serverCert, serverKey = filepath.Join(dir, "server.crt"), filepath.Join(dir, "server.key")
	for path, data := range map[string][]byte{s.CA: ca.PEM, s.Cert: cli.CertPEM, s.Key: cli.KeyPEM, serverCert: srv.CertPEM,
		serverKey: srv.KeyPEM, s.PasswordFile: []byte("pw-" + name + "-s3cret\n")} {
		if err := pki.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return s, serverCert, serverKey
}

// ExternalEtcdSecure starts Debian's etcd with TLS on its client port
// (client certificates required) and authentication on: user root.
func ExternalEtcdSecure(t testing.TB) (*External, Secure) {
	t.Helper()
	dir := t.TempDir()
	s, cert, key := securePKI(t, dir, "etcd")
	s.User = "root"
	client, peer := FreeAddr(t), FreeAddr(t)
	e := startExternal(t, "etcd", "https://"+client, client,
		"--name", "ext", "--data-dir", filepath.Join(dir, "data"),
		"--listen-client-urls", "https://"+client, "--advertise-client-urls", "https://"+client,
		"--cert-file", cert, "--key-file", key, "--trusted-ca-file", s.CA, "--client-cert-auth",
		"--listen-peer-urls", "http://"+peer, "--initial-advertise-peer-urls", "http://"+peer,
		"--initial-cluster", "ext=http://"+peer, "--heartbeat-interval", "10", "--election-timeout", "100")
	tc, err := transport.TLSInfo{CertFile: s.Cert, KeyFile: s.Key, TrustedCAFile: s.CA}.ClientConfig()
	if err != nil {
		t.Fatal(err)
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{e.URL}, TLS: tc, DialTimeout: 10 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cli.Close() }()
	pw, err := os.ReadFile(s.PasswordFile)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, step := range []func() error{
		func() error { _, err := cli.UserAdd(ctx, "root", strings.TrimSpace(string(pw))); return err },
		func() error { _, err := cli.RoleAdd(ctx, "root"); return err },
		func() error { _, err := cli.UserGrantRole(ctx, "root", "root"); return err },
		func() error { _, err := cli.AuthEnable(ctx); return err },
	} {
		if err := step(); err != nil {
			t.Fatalf("etcd auth: %v", err)
		}
	}
	return e, s
}

// ExternalNATSSecure starts Debian's nats-server with JetStream, TLS and
// a user and password.
func ExternalNATSSecure(t testing.TB) (*External, Secure) {
	t.Helper()
	dir := t.TempDir()
	s, cert, key := securePKI(t, dir, "nats")
	s.User = "bmaas"
	pw, err := os.ReadFile(s.PasswordFile)
	if err != nil {
		t.Fatal(err)
	}
	addr := FreeAddr(t)
	host, port, _ := net.SplitHostPort(addr)
	e := startExternal(t, "nats-server", "nats://"+addr, addr, "-js", "-a", host, "-p", port, "-sd", filepath.Join(dir, "js"),
		"--user", s.User, "--pass", strings.TrimSpace(string(pw)), "--tls", "--tlscert", cert, "--tlskey", key)
	return e, s
}

package pki

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

type pkiFiles struct {
	ca    *CA
	files Files
}

func newFiles(t *testing.T) pkiFiles {
	t.Helper()
	ca, err := NewCA("test CA", time.Hour)
	require.NoError(t, err)
	dir := t.TempDir()
	f := Files{CertFile: filepath.Join(dir, "server.crt"), KeyFile: filepath.Join(dir, "server.key"), ClientCAFile: filepath.Join(dir, "ca.crt")}
	require.NoError(t, WriteFile(f.ClientCAFile, ca.PEM, 0o644))
	p := pkiFiles{ca: ca, files: f}
	p.issueServer(t, "first")
	return p
}

func (p pkiFiles) issueServer(t *testing.T, cn string) {
	t.Helper()
	l, err := p.ca.Issue(Leaf{CommonName: cn, Hosts: []string{"127.0.0.1", "localhost"}, URIs: []string{NodeURI(cn)},
		Server: true, Client: true, TTL: time.Hour})
	require.NoError(t, err)
	require.NoError(t, WriteFile(p.files.KeyFile, l.KeyPEM, 0o600))
	require.NoError(t, WriteFile(p.files.CertFile, l.CertPEM, 0o644))
}

func (p pkiFiles) client(t *testing.T, l Leaf) tls.Certificate {
	t.Helper()
	l.Client, l.TTL = true, time.Hour
	is, err := p.ca.Issue(l)
	require.NoError(t, err)
	c, err := is.TLS()
	require.NoError(t, err)
	return c
}

// handshake runs a TLS handshake between server and client over a pipe
// and returns the client's view (the server's certificate name) and the
// server's error.
func handshake(t *testing.T, server, client *tls.Config) (string, error, error) {
	t.Helper()
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	srvErr := make(chan error, 1)
	go func() {
		s := tls.Server(a, server)
		err := s.Handshake()
		if err == nil {
			// TLS 1.3 sends the client's certificate verdict after the
			// client's Finished: read once so it is delivered.
			_, _ = s.Write([]byte{1})
		}
		srvErr <- err
	}()
	c := tls.Client(b, client)
	err := c.Handshake()
	if err == nil {
		_, err = c.Read(make([]byte, 1))
	}
	serr := <-srvErr
	if err != nil {
		return "", err, serr
	}
	return c.ConnectionState().PeerCertificates[0].Subject.CommonName, nil, serr
}

func TestReloaderServesAndReloads(t *testing.T) {
	t.Parallel()
	p := newFiles(t)
	r, err := NewReloader(p.files)
	require.NoError(t, err)
	now := time.Now()
	r.now = func() time.Time { return now }
	user := p.client(t, Leaf{CommonName: "alice", URIs: []string{UserURI("alice")}})
	client := &tls.Config{RootCAs: p.ca.Pool(), ServerName: "127.0.0.1", Certificates: []tls.Certificate{user}}

	name, cerr, serr := handshake(t, r.ServerConfig(true, nil), client)
	require.NoError(t, cerr)
	require.NoError(t, serr)
	require.Equal(t, "first", name)
	// Without a client certificate, a port that requires one refuses.
	_, cerr, _ = handshake(t, r.ServerConfig(true, nil), &tls.Config{RootCAs: p.ca.Pool(), ServerName: "127.0.0.1"})
	require.Error(t, cerr)

	// New files: served after the reload interval, not before.
	p.issueServer(t, "second")
	name, _, _ = handshake(t, r.ServerConfig(true, nil), client)
	require.Equal(t, "first", name)
	now = now.Add(reloadEvery)
	name, _, _ = handshake(t, r.ServerConfig(true, nil), client)
	require.Equal(t, "second", name)

	// A broken file keeps the last good pair.
	require.NoError(t, WriteFile(p.files.CertFile, []byte("garbage"), 0o644))
	now = now.Add(reloadEvery)
	name, _, _ = handshake(t, r.ServerConfig(true, nil), client)
	require.Equal(t, "second", name)
}

func TestReplicaTakesOnlyProcesses(t *testing.T) {
	t.Parallel()
	p := newFiles(t)
	r, err := NewReloader(p.files)
	require.NoError(t, err)
	for _, tc := range []struct {
		leaf Leaf
		ok   bool
	}{
		{Leaf{CommonName: "gateway", URIs: []string{NodeURI("gpu-07")}}, true},
		{Leaf{CommonName: "alice", URIs: []string{UserURI("alice")}}, false},
		{Leaf{CommonName: "anonymous"}, false},
	} {
		cert := p.client(t, tc.leaf)
		_, cerr, serr := handshake(t, r.ReplicaServerConfig(nil),
			&tls.Config{RootCAs: p.ca.Pool(), ServerName: "127.0.0.1", Certificates: []tls.Certificate{cert}})
		if tc.ok {
			require.NoError(t, cerr, tc.leaf.CommonName)
			require.NoError(t, serr, tc.leaf.CommonName)
		} else {
			require.Error(t, serr, tc.leaf.CommonName)
		}
	}
}

func TestClientVerifiesServer(t *testing.T) {
	t.Parallel()
	p := newFiles(t)
	r, err := NewReloader(p.files)
	require.NoError(t, err)
	// The right name: accepted; another name, or another CA: refused.
	cfg := r.ClientConfig()
	cfg.ServerName = "localhost"
	_, cerr, _ := handshake(t, r.ServerConfig(true, nil), cfg)
	require.NoError(t, cerr)
	cfg = r.ClientConfig()
	cfg.ServerName = "evil.example"
	_, cerr, _ = handshake(t, r.ServerConfig(true, nil), cfg)
	require.ErrorContains(t, cerr, "evil.example")

	other := newFiles(t)
	ro, err := NewReloader(other.files)
	require.NoError(t, err)
	cfg = r.ClientConfig()
	cfg.ServerName = "localhost"
	_, cerr, _ = handshake(t, ro.ServerConfig(false, nil), cfg)
	require.ErrorContains(t, cerr, "unknown authority")

	// The self configuration takes only the process's own certificate.
	_, cerr, _ = handshake(t, r.ServerConfig(true, nil), r.SelfClientConfig())
	require.NoError(t, cerr)
	_, cerr, _ = handshake(t, ro.ServerConfig(false, nil), r.SelfClientConfig())
	require.ErrorContains(t, cerr, "not this process")
}

func TestFilesValidate(t *testing.T) {
	t.Parallel()
	for _, f := range []Files{
		{CertFile: "a"},
		{ClientCAFile: "ca"},
		{CertFile: "a", KeyFile: "b", CAKeyFile: "k"},
	} {
		require.Error(t, f.Validate(), "%+v", f)
	}
	require.NoError(t, (&Files{}).Validate())
	_, err := NewReloader(Files{CertFile: "/nonexistent.crt", KeyFile: "/nonexistent.key"})
	require.ErrorContains(t, err, "tls.cert-file")
}

// TestLoadRSACA: a CA made elsewhere (cert-manager's default is RSA)
// issues replicas' certificates as well.
func TestLoadRSACA(t *testing.T) {
	t.Parallel()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "rsa CA"}, IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign, NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	dir := t.TempDir()
	require.NoError(t, WriteFile(filepath.Join(dir, "ca.crt"), pemBlock("CERTIFICATE", der), 0o644))
	require.NoError(t, WriteFile(filepath.Join(dir, "ca.key"), pemBlock("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(key)), 0o600))
	ca, err := LoadCA(filepath.Join(dir, "ca.crt"), filepath.Join(dir, "ca.key"))
	require.NoError(t, err)
	l, err := ca.Issue(Leaf{CommonName: "replica", Hosts: []string{"127.0.0.1"}, Server: true, TTL: time.Hour})
	require.NoError(t, err)
	c, err := l.TLS()
	require.NoError(t, err)
	leaf, err := x509.ParseCertificate(c.Certificate[0])
	require.NoError(t, err)
	_, err = leaf.Verify(x509.VerifyOptions{Roots: ca.Pool(), DNSName: "127.0.0.1", KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	require.NoError(t, err)
}

package pki

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"os"
	"sync"
	"time"
)

// Files are a process's TLS files. Flags are under the `tls.` prefix.
type Files struct {
	// CertFile and KeyFile are the certificate the process serves with
	// and presents to the services and replicas it calls.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ClientCAFile is the cluster CA: the gRPC port then requires a
	// client certificate it issued (mTLS), and the process verifies the
	// services and replicas it calls against it.
	ClientCAFile string `yaml:"client_ca_file"`
	// CAKeyFile, when set, is the cluster CA's key: agents then issue
	// each model-server replica a certificate of its own.
	CAKeyFile string `yaml:"ca_key_file"`
}

// RegisterFlags registers the flags.
func (f *Files) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&f.CertFile, "tls.cert-file", "", "TLS certificate (PEM) of every listener; TLS is off when empty")
	fs.StringVar(&f.KeyFile, "tls.key-file", "", "TLS private key (PEM) of --tls.cert-file")
	fs.StringVar(&f.ClientCAFile, "tls.client-ca-file", "",
		"cluster CA (PEM): the gRPC port requires client certificates it issued, and services and replicas are verified against it")
	fs.StringVar(&f.CAKeyFile, "tls.ca-key-file", "", "key of the cluster CA: agents issue each model-server replica its own certificate")
}

// Enabled reports whether TLS is on.
func (f *Files) Enabled() bool { return f.CertFile != "" }

// Validate checks that the files go together.
func (f *Files) Validate() error {
	switch {
	case (f.CertFile == "") != (f.KeyFile == ""):
		return errors.New("tls.cert-file and tls.key-file: set both or neither")
	case f.CertFile == "" && (f.ClientCAFile != "" || f.CAKeyFile != ""):
		return errors.New("tls.client-ca-file and tls.ca-key-file need tls.cert-file and tls.key-file")
	case f.CAKeyFile != "" && f.ClientCAFile == "":
		return errors.New("tls.ca-key-file needs tls.client-ca-file (the CA's certificate)")
	}
	return nil
}

// reloadEvery bounds how often the files are looked at again.
const reloadEvery = time.Second

// Reloader serves a certificate and a CA pool from files and takes new
// contents of the files without a restart: a handshake after a file
// changed (at most a second later) uses the new certificate or CA.
type Reloader struct {
	files Files
	now   func() time.Time

	mu      sync.Mutex
	checked time.Time
	certKey []byte // the contents the current pair was made of
	caPEM   []byte
	cert    *tls.Certificate
	pool    *x509.CertPool
}

// NewReloader loads the files once, failing on any problem, and keeps
// them current.
func NewReloader(files Files) (*Reloader, error) {
	if err := files.Validate(); err != nil {
		return nil, err
	}
	r := &Reloader{files: files, now: time.Now}
	if err := r.load(); err != nil {
		return nil, err
	}
	r.checked = r.now()
	return r, nil
}

// Files are the reloader's files.
func (r *Reloader) Files() Files { return r.files }

func (r *Reloader) load() error {
	certPEM, err := os.ReadFile(r.files.CertFile)
	if err != nil {
		return fmt.Errorf("tls.cert-file: %w", err)
	}
	keyPEM, err := os.ReadFile(r.files.KeyFile)
	if err != nil {
		return fmt.Errorf("tls.key-file: %w", err)
	}
	both := append(append([]byte{}, certPEM...), keyPEM...)
	if !bytes.Equal(both, r.certKey) {
		pair, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			return fmt.Errorf("tls.cert-file %s with tls.key-file %s: %w", r.files.CertFile, r.files.KeyFile, err)
		}
		r.cert, r.certKey = &pair, both
	}
	if r.files.ClientCAFile == "" {
		return nil
	}
	caPEM, err := os.ReadFile(r.files.ClientCAFile)
	if err != nil {
		return fmt.Errorf("tls.client-ca-file: %w", err)
	}
	if !bytes.Equal(caPEM, r.caPEM) {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(caPEM) {
			return fmt.Errorf("tls.client-ca-file %s: no PEM certificate in it", r.files.ClientCAFile)
		}
		r.pool, r.caPEM = pool, caPEM
	}
	return nil
}

// current returns the certificate and pool, reloading the files when a
// second has passed since the last look. A file being rewritten (or a
// broken one) keeps the previous pair until it loads again.
func (r *Reloader) current() (*tls.Certificate, *x509.CertPool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if now := r.now(); now.Sub(r.checked) >= reloadEvery {
		r.checked = now
		_ = r.load()
	}
	return r.cert, r.pool
}

// Pool is the cluster CA pool (nil without --tls.client-ca-file).
func (r *Reloader) Pool() *x509.CertPool {
	_, p := r.current()
	return p
}

// ServerConfig is a listener's TLS configuration: with a CA, clients
// must present a certificate it issued when requireClient is set, and
// may present one otherwise. verify, when set, checks the verified
// client's leaf certificate further (its identity).
func (r *Reloader) ServerConfig(requireClient bool, verify func(*x509.Certificate) error) *tls.Config {
	base := &tls.Config{MinVersion: tls.VersionTLS12}
	base.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
		cert, pool := r.current()
		c := base.Clone()
		c.GetConfigForClient = nil
		c.Certificates = []tls.Certificate{*cert}
		c.NextProtos = []string{"h2", "http/1.1"}
		if pool != nil {
			c.ClientCAs = pool
			c.ClientAuth = tls.VerifyClientCertIfGiven
			if requireClient {
				c.ClientAuth = tls.RequireAndVerifyClientCert
			}
		}
		if verify != nil {
			c.VerifyPeerCertificate = func(_ [][]byte, chains [][]*x509.Certificate) error {
				if len(chains) == 0 || len(chains[0]) == 0 {
					return nil // no client certificate; ClientAuth decided
				}
				return verify(chains[0][0])
			}
		}
		return c, nil
	}
	return base
}

// ClientConfig is the TLS configuration of a call to a service or a
// replica: the process's certificate as the client's, and the server
// verified against the cluster CA (the system's roots without one) for
// the host name dialled, both reloaded as the files change.
func (r *Reloader) ClientConfig() *tls.Config {
	return r.clientConfig(func(cs tls.ConnectionState) error {
		_, pool := r.current()
		return VerifyServer(cs, pool)
	})
}

// clientConfig presents the process's current certificate and checks
// the server with verify: the roots and the certificate change with the
// files, so verification is done there rather than with a fixed RootCAs.
func (r *Reloader) clientConfig(verify func(tls.ConnectionState) error) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			cert, _ := r.current()
			return cert, nil
		},
		InsecureSkipVerify: true, //nolint:gosec // verified in VerifyConnection
		VerifyConnection:   verify,
	}
}

// VerifyServer checks a server's chain against pool (the system roots
// when nil) and its name against the one dialled.
func VerifyServer(cs tls.ConnectionState, pool *x509.CertPool) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("tls: the server sent no certificate")
	}
	opts := x509.VerifyOptions{Roots: pool, DNSName: cs.ServerName, Intermediates: x509.NewCertPool(),
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	for _, c := range cs.PeerCertificates[1:] {
		opts.Intermediates.AddCert(c)
	}
	_, err := cs.PeerCertificates[0].Verify(opts)
	return err
}

// SelfClientConfig is the TLS configuration of a process's calls to its
// own listener: it presents the process's certificate and accepts only a
// server presenting that same certificate, whatever host it was dialled
// by (an address bound on every interface is no name in a certificate).
func (r *Reloader) SelfClientConfig() *tls.Config {
	return r.clientConfig(func(cs tls.ConnectionState) error {
		cert, _ := r.current()
		if len(cs.PeerCertificates) == 0 || !bytes.Equal(cs.PeerCertificates[0].Raw, cert.Certificate[0]) {
			return errors.New("tls: the server is not this process")
		}
		return nil
	})
}

// ReplicaServerConfig is the TLS configuration of a model-server
// replica's ports: it serves leaf() (the process's own certificate when
// leaf is nil) and requires a client certificate of the cluster CA that
// names a bmaas process (RequireNode): the gateway, not a user.
func (r *Reloader) ReplicaServerConfig(leaf func() (*tls.Certificate, error)) *tls.Config {
	base := &tls.Config{MinVersion: tls.VersionTLS12}
	base.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
		cert, pool := r.current()
		if leaf != nil {
			l, err := leaf()
			if err != nil {
				return nil, err
			}
			cert = l
		}
		if pool == nil {
			return nil, errors.New("tls: a replica needs the cluster CA (--tls.client-ca-file) to check its callers")
		}
		c := base.Clone()
		c.GetConfigForClient = nil
		c.Certificates = []tls.Certificate{*cert}
		c.NextProtos = []string{"h2"}
		c.ClientCAs = pool
		c.ClientAuth = tls.RequireAndVerifyClientCert
		c.VerifyPeerCertificate = func(_ [][]byte, chains [][]*x509.Certificate) error {
			if len(chains) == 0 || len(chains[0]) == 0 {
				return errors.New("tls: no client certificate")
			}
			return RequireNode(chains[0][0])
		}
		return c, nil
	}
	return base
}

// Renewing hands out a certificate issued by issue, and a new one when
// the current has a tenth of its life left: a long-lived replica never
// serves an expired certificate.
func Renewing(issue func() (*Issued, error)) func() (*tls.Certificate, error) {
	var mu sync.Mutex
	var cur *tls.Certificate
	var renewAt time.Time
	return func() (*tls.Certificate, error) {
		mu.Lock()
		defer mu.Unlock()
		if cur != nil && time.Now().Before(renewAt) {
			return cur, nil
		}
		l, err := issue()
		if err != nil {
			if cur != nil {
				return cur, nil // the old one holds until it can be renewed
			}
			return nil, err
		}
		c, err := l.TLS()
		if err != nil {
			return nil, err
		}
		leaf, err := x509.ParseCertificate(c.Certificate[0])
		if err != nil {
			return nil, err
		}
		cur, renewAt = &c, leaf.NotAfter.Add(-leaf.NotAfter.Sub(leaf.NotBefore)/10)
		return cur, nil
	}
}

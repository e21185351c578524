package app

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/bmaas/bmaas/internal/embedded"
)

// EtcdAuth are the credentials and TLS files of the etcd client. `bmaas
// up` sets them itself for its embedded etcd; `bmaas serve` takes them
// for an external one.
type EtcdAuth struct {
	Username     string `yaml:"etcd_username"`
	PasswordFile string `yaml:"etcd_password_file"`
	CA           string `yaml:"etcd_ca"`
	Cert         string `yaml:"etcd_cert"`
	Key          string `yaml:"etcd_key"`
}

// RegisterFlags registers the flags.
func (e *EtcdAuth) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&e.Username, "etcd-username", "", "etcd user (external etcd with authentication)")
	fs.StringVar(&e.PasswordFile, "etcd-password-file", "", "file holding the etcd user's password")
	fs.StringVar(&e.CA, "etcd-ca", "", "CA certificate (PEM) that signed the etcd servers' certificates")
	fs.StringVar(&e.Cert, "etcd-cert", "", "client certificate (PEM) presented to etcd")
	fs.StringVar(&e.Key, "etcd-key", "", "private key (PEM) of --etcd-cert")
}

// Validate checks that the settings go together.
func (e *EtcdAuth) Validate() error {
	switch {
	case (e.Username == "") != (e.PasswordFile == ""):
		return errors.New("etcd-username and etcd-password-file: set both or neither")
	case (e.Cert == "") != (e.Key == ""):
		return errors.New("etcd-cert and etcd-key: set both or neither")
	}
	return nil
}

// Client opens an etcd client of endpoints with the credentials.
func (e *EtcdAuth) Client(ctx context.Context, endpoints []string) (*clientv3.Client, error) {
	cfg := clientv3.Config{Endpoints: endpoints, DialTimeout: 5 * time.Second, Context: context.WithoutCancel(ctx),
		Logger: zap.NewNop()}
	if e.PasswordFile != "" {
		pw, err := readSecret("etcd-password-file", e.PasswordFile)
		if err != nil {
			return nil, err
		}
		cfg.Username, cfg.Password = e.Username, pw
	}
	if e.CA != "" || e.Cert != "" {
		tc, err := transport.TLSInfo{CertFile: e.Cert, KeyFile: e.Key, TrustedCAFile: e.CA}.ClientConfig()
		if err != nil {
			return nil, fmt.Errorf("etcd TLS (--etcd-ca, --etcd-cert, --etcd-key): %w", err)
		}
		cfg.TLS = tc
	}
	return clientv3.New(cfg)
}

// NATSAuth are the credentials and TLS files of the NATS client.
type NATSAuth struct {
	User         string `yaml:"nats_user"`
	PasswordFile string `yaml:"nats_password_file"`
	// Creds is a NATS credentials file (a user JWT and its nkey seed).
	Creds string `yaml:"nats_creds"`
	CA    string `yaml:"nats_ca"`
	Cert  string `yaml:"nats_cert"`
	Key   string `yaml:"nats_key"`
}

// RegisterFlags registers the flags.
func (n *NATSAuth) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&n.User, "nats-user", "", "NATS user (external NATS with authentication)")
	fs.StringVar(&n.PasswordFile, "nats-password-file", "", "file holding the NATS user's password")
	fs.StringVar(&n.Creds, "nats-creds", "", "NATS credentials file (user JWT and nkey seed), instead of a user and password")
	fs.StringVar(&n.CA, "nats-ca", "", "CA certificate (PEM) that signed the NATS servers' certificates")
	fs.StringVar(&n.Cert, "nats-cert", "", "client certificate (PEM) presented to NATS")
	fs.StringVar(&n.Key, "nats-key", "", "private key (PEM) of --nats-cert")
}

// Validate checks that the settings go together.
func (n *NATSAuth) Validate() error {
	switch {
	case (n.User == "") != (n.PasswordFile == ""):
		return errors.New("nats-user and nats-password-file: set both or neither")
	case n.Creds != "" && n.User != "":
		return errors.New("nats-creds: use it or nats-user, not both")
	case (n.Cert == "") != (n.Key == ""):
		return errors.New("nats-cert and nats-key: set both or neither")
	}
	return nil
}

// Options are the NATS connection's options for the credentials.
func (n *NATSAuth) Options() ([]nats.Option, error) {
	var opts []nats.Option
	if n.PasswordFile != "" {
		pw, err := readSecret("nats-password-file", n.PasswordFile)
		if err != nil {
			return nil, err
		}
		opts = append(opts, nats.UserInfo(n.User, pw))
	}
	if n.Creds != "" {
		opts = append(opts, nats.UserCredentials(n.Creds))
	}
	if n.CA != "" {
		opts = append(opts, nats.RootCAs(n.CA))
	}
	if n.Cert != "" {
		opts = append(opts, nats.ClientCert(n.Cert, n.Key))
	}
	return opts, nil
}

// readSecret reads a password file, without its final newline.
func readSecret(flagName, path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("%s: %w", flagName, err)
	}
	s := strings.TrimRight(string(b), "\r\n")
	if s == "" {
		return "", fmt.Errorf("%s %s: empty", flagName, path)
	}
	return s, nil
}

// Embedded credentials: generated on the first start, kept in the data
// directory's secrets/ (0700), each file 0600.
const (
	secretsDir        = "secrets"
	etcdPasswordName  = "etcd-root-password"
	natsPasswordName  = "nats-password"
	meshTokenName     = "mesh-token"
	adminTokenName    = "admin.token"
	embeddedNATSUser  = "bmaas"
	runDir            = "run"
	randomSecretBytes = 32
)

// ensureSecret returns the secret in dir/name, creating a random one on
// the first call.
func ensureSecret(dir, name string) (string, error) {
	path := filepath.Join(dir, name)
	if b, err := os.ReadFile(path); err == nil {
		if s := strings.TrimSpace(string(b)); s != "" {
			return s, nil
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return "", err
	}
	b := make([]byte, randomSecretBytes)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	s := base64.RawURLEncoding.EncodeToString(b)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", err
	}
	_, err = f.WriteString(s + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return s, err
}

// socketDir is where the embedded etcd's unix sockets go: the data
// directory's run/, or a private temporary directory when that path is
// too long for a socket.
func (a *App) socketDir() (string, func(), error) {
	dir := filepath.Join(a.cfg.DataDir, runDir)
	if len(filepath.Join(dir, "etcd-peer.sock")) <= embedded.MaxSocketPath {
		return dir, func() {}, nil
	}
	tmp, err := os.MkdirTemp("", "bmaas-run-")
	if err != nil {
		return "", nil, err
	}
	return tmp, func() { _ = os.RemoveAll(tmp) }, nil
}

package cli

import (
	"crypto/tls"
	"crypto/x509"
	"os"

	"github.com/spf13/pflag"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
)

// tlsFlags are the client's TLS files: the CA that issued the server's
// certificate, and a client certificate for servers that require one
// (bmaas up --tls writes all three into <data-dir>/tls).
type tlsFlags struct {
	ca, cert, key string
}

func (f *tlsFlags) register(pf *pflag.FlagSet) {
	pf.StringVar(&f.ca, "tls-ca", os.Getenv("BMAAS_TLS_CA"),
		"CA certificate (PEM) that issued the server's; TLS is on when set or --server starts with https:// (env BMAAS_TLS_CA)")
	pf.StringVar(&f.cert, "tls-cert", os.Getenv("BMAAS_TLS_CERT"), "client certificate (PEM) (env BMAAS_TLS_CERT)")
	pf.StringVar(&f.key, "tls-key", os.Getenv("BMAAS_TLS_KEY"), "private key (PEM) of --tls-cert (env BMAAS_TLS_KEY)")
}

// credentials are the connection's transport credentials: TLS when a CA
// or a client certificate is given or secure is set, plain otherwise.
func (f *tlsFlags) credentials(secure bool) (credentials.TransportCredentials, error) {
	if f.ca == "" && f.cert == "" && !secure {
		return insecure.NewCredentials(), nil
	}
	cfg, err := f.config()
	if err != nil {
		return nil, err
	}
	return credentials.NewTLS(cfg), nil
}

// config is the TLS configuration of the flags: the CA to trust (the
// system's without --tls-ca) and the client certificate.
func (f *tlsFlags) config() (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if f.ca != "" {
		b, err := os.ReadFile(f.ca)
		if err != nil {
			return nil, usageErrorf("--tls-ca: %v", err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(b) {
			return nil, usageErrorf("--tls-ca %s: no PEM certificate in it", f.ca)
		}
	}
	if (f.cert == "") != (f.key == "") {
		return nil, usageErrorf("--tls-cert and --tls-key: give both or neither")
	}
	if f.cert != "" {
		pair, err := tls.LoadX509KeyPair(f.cert, f.key)
		if err != nil {
			return nil, usageErrorf("--tls-cert %s with --tls-key %s: %v", f.cert, f.key, err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}

// hint says, for an unreachable server, which TLS flag may be missing.
func (f *tlsFlags) hint(secure bool) string {
	switch {
	case f.ca == "" && f.cert == "" && !secure:
		return " (a server with TLS needs --tls-ca, or BMAAS_TLS_CA)"
	case f.cert == "":
		return " (a server that requires client certificates needs --tls-cert and --tls-key, or BMAAS_TLS_CERT and BMAAS_TLS_KEY)"
	}
	return ""
}

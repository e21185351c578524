package app

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/bmaas/bmaas/pkg/pki"
)

// modTLS loads the process's certificates before anything listens or
// dials: the files of --tls.*, or under `bmaas up --tls` a development CA
// and certificates made in <data-dir>/tls.
const modTLS = "tls"

// The development PKI's files in <data-dir>/tls.
const (
	tlsDir         = "tls"
	devCACert      = "ca.crt"
	devCAKey       = "ca.key"
	devServerCert  = "server.crt"
	devServerKey   = "server.key"
	devClientCert  = "client.crt"
	devClientKey   = "client.key"
	devCATTL       = 10 * 365 * 24 * time.Hour
	devLeafTTL     = 365 * 24 * time.Hour
	devRenewBefore = 30 * 24 * time.Hour
	// DevUser is the user the development client certificate names.
	DevUser = "admin"
)

// DevTLSFiles are the development PKI's files under a data directory:
// the server's, and the client certificate for the CLI, SDK and curl.
type DevTLSFiles struct {
	CA, ServerCert, ServerKey, ClientCert, ClientKey, CAKey string
}

// DevTLS names the development PKI's files under dataDir.
func DevTLS(dataDir string) DevTLSFiles {
	dir := filepath.Join(dataDir, tlsDir)
	return DevTLSFiles{CA: filepath.Join(dir, devCACert), CAKey: filepath.Join(dir, devCAKey),
		ServerCert: filepath.Join(dir, devServerCert), ServerKey: filepath.Join(dir, devServerKey),
		ClientCert: filepath.Join(dir, devClientCert), ClientKey: filepath.Join(dir, devClientKey)}
}

func (a *App) startTLS(context.Context) error {
	if a.cfg.DevTLS {
		files, err := makeDevPKI(DevTLS(a.cfg.DataDir), a.devHosts(), a.nodeName())
		if err != nil {
			return fmt.Errorf("development TLS in %s: %w", filepath.Join(a.cfg.DataDir, tlsDir), err)
		}
		a.cfg.TLS = files
	}
	if !a.cfg.TLS.Enabled() {
		return nil
	}
	r, err := pki.NewReloader(a.cfg.TLS)
	if err != nil {
		return err
	}
	a.w.tls = r
	if a.cfg.TLS.CAKeyFile != "" {
		ca, err := pki.LoadCA(a.cfg.TLS.ClientCAFile, a.cfg.TLS.CAKeyFile)
		if err != nil {
			return fmt.Errorf("tls.ca-key-file: %w", err)
		}
		a.w.ca = ca
	}
	a.setAddrs(func(ad *Addrs) { ad.TLS = a.cfg.TLS })
	return nil
}

// devHosts are the names the development server certificate must carry:
// loopback, this machine's names and the advertised host.
func (a *App) devHosts() []string {
	hosts := []string{"localhost", "127.0.0.1", "::1", a.nodeName()}
	if h, err := os.Hostname(); err == nil {
		hosts = append(hosts, h)
	}
	if h, _, err := net.SplitHostPort(advertise(a.cfg.GRPC.Addr, a.cfg.AdvertiseHost, firstNonLoopback)); err == nil {
		hosts = append(hosts, h)
	}
	if h, _, err := net.SplitHostPort(a.cfg.HTTPAddr); err == nil && !isUnspecified(h) {
		hosts = append(hosts, h)
	}
	slices.Sort(hosts)
	return slices.Compact(hosts)
}

// makeDevPKI makes what is missing of the development PKI: the CA, the
// server certificate (made anew when it lacks one of hosts or expires
// within a month) and the client certificate.
func makeDevPKI(f DevTLSFiles, hosts []string, node string) (pki.Files, error) {
	files := pki.Files{CertFile: f.ServerCert, KeyFile: f.ServerKey, ClientCAFile: f.CA, CAKeyFile: f.CAKey}
	ca, err := pki.LoadCA(f.CA, f.CAKey)
	if errors.Is(err, os.ErrNotExist) {
		if ca, err = pki.NewCA("bmaas development CA", devCATTL); err != nil {
			return files, err
		}
		key, err := ca.KeyPEM()
		if err != nil {
			return files, err
		}
		if err := pki.WriteFile(f.CAKey, key, 0o600); err != nil {
			return files, err
		}
		if err := pki.WriteFile(f.CA, ca.PEM, 0o644); err != nil {
			return files, err
		}
	} else if err != nil {
		return files, err
	}
	if !certCovers(f.ServerCert, ca, hosts) {
		leaf, err := ca.Issue(pki.Leaf{CommonName: node, Hosts: hosts, URIs: []string{pki.NodeURI(node)},
			Server: true, Client: true, TTL: devLeafTTL})
		if err != nil {
			return files, err
		}
		if err := writePair(f.ServerCert, f.ServerKey, leaf); err != nil {
			return files, err
		}
	}
	if !certCovers(f.ClientCert, ca, nil) {
		leaf, err := ca.Issue(pki.Leaf{CommonName: DevUser, URIs: []string{pki.UserURI(DevUser)}, Client: true, TTL: devLeafTTL})
		if err != nil {
			return files, err
		}
		if err := writePair(f.ClientCert, f.ClientKey, leaf); err != nil {
			return files, err
		}
	}
	return files, nil
}

// writePair writes the key first, so a reader of the pair never sees a
// certificate without its key.
func writePair(certFile, keyFile string, l *pki.Issued) error {
	if err := pki.WriteFile(keyFile, l.KeyPEM, 0o600); err != nil {
		return err
	}
	return pki.WriteFile(certFile, l.CertPEM, 0o644)
}

// certCovers reports whether the certificate in path was issued by ca,
// is valid for another month and names every host.
func certCovers(path string, ca *pki.CA, hosts []string) bool {
	b, err := os.ReadFile(path)
	if err != nil {
		return false
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return false
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil || !bytes.Equal(c.RawIssuer, ca.Cert.RawSubject) || c.CheckSignatureFrom(ca.Cert) != nil ||
		time.Until(c.NotAfter) < devRenewBefore {
		return false
	}
	for _, h := range hosts {
		if c.VerifyHostname(h) != nil {
			return false
		}
	}
	return true
}

// serverTLS is the TLS configuration of the gRPC port: with a cluster
// CA, callers must present a certificate it issued.
func (a *App) serverTLS() *tls.Config {
	if a.w.tls == nil {
		return nil
	}
	return a.w.tls.ServerConfig(a.cfg.TLS.ClientCAFile != "", nil)
}

// httpTLS is the HTTP edge's: browsers and curl present no certificate,
// so one is verified when given and never required.
func (a *App) httpTLS() *tls.Config {
	if a.w.tls == nil {
		return nil
	}
	return a.w.tls.ServerConfig(false, nil)
}

// Package pki makes the certificates of a bmaas cluster: a certificate
// authority, certificates it issues for servers, clients and model-server
// replicas, and the PEM files they live in. It is used by `bmaas up --tls`
// (a development CA in the data directory), by `bmaas tls` for clusters
// without a PKI of their own, by agents issuing replica certificates, and
// by tests. Keys are ECDSA P-256.
package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"time"
)

// CA is a certificate authority: its certificate and key.
type CA struct {
	Cert *x509.Certificate
	// Key signs; a CA of its own is ECDSA P-256, a loaded one may also
	// be RSA or Ed25519 (cert-manager makes RSA CAs by default).
	Key crypto.Signer
	// PEM is the certificate, PEM-encoded.
	PEM []byte
}

// NewCA makes a self-signed CA valid for ttl.
func NewCA(name string, ttl time.Duration) (*CA, error) {
	key, serial, err := newKey()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: name, Organization: []string{"bmaas"}},
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.Add(ttl),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("sign CA: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &CA{Cert: cert, Key: key, PEM: pemBlock("CERTIFICATE", der)}, nil
}

// LoadCA reads a CA's certificate and key from PEM files.
func LoadCA(certFile, keyFile string) (*CA, error) {
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("load CA %s: %w", certFile, err)
	}
	key, ok := pair.PrivateKey.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("load CA %s: the key cannot sign", keyFile)
	}
	cert, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return nil, err
	}
	if !cert.IsCA {
		return nil, fmt.Errorf("load CA %s: not a CA certificate", certFile)
	}
	return &CA{Cert: cert, Key: key, PEM: pemBlock("CERTIFICATE", pair.Certificate[0])}, nil
}

// Leaf is what a certificate is for and whom it names.
type Leaf struct {
	CommonName string
	// Hosts are DNS names and IP addresses (as strings) of a server.
	Hosts []string
	// URIs identify the holder, e.g. spiffe://bmaas/node/gpu-07.
	URIs []string
	// Server and Client select the extended key usages.
	Server, Client bool
	TTL            time.Duration
}

// Issued is an issued certificate and its key, PEM-encoded.
type Issued struct {
	CertPEM, KeyPEM []byte
}

// TLS returns the pair as a tls.Certificate.
func (i *Issued) TLS() (tls.Certificate, error) { return tls.X509KeyPair(i.CertPEM, i.KeyPEM) }

// Issue signs a new key's certificate for l.
func (ca *CA) Issue(l Leaf) (*Issued, error) {
	if l.TTL <= 0 {
		return nil, errors.New("issue: a positive TTL is required")
	}
	key, serial, err := newKey()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: l.CommonName, Organization: []string{"bmaas"}},
		NotBefore:    now.Add(-time.Minute),
		NotAfter:     now.Add(l.TTL),
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	if tmpl.NotAfter.After(ca.Cert.NotAfter) {
		tmpl.NotAfter = ca.Cert.NotAfter
	}
	for _, h := range l.Hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if h != "" {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	for _, s := range l.URIs {
		u, err := url.Parse(s)
		if err != nil {
			return nil, fmt.Errorf("issue: URI %q: %w", s, err)
		}
		tmpl.URIs = append(tmpl.URIs, u)
	}
	if l.Server {
		tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageServerAuth)
	}
	if l.Client {
		tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageClientAuth)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.Key)
	if err != nil {
		return nil, fmt.Errorf("sign %s: %w", l.CommonName, err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, err
	}
	return &Issued{CertPEM: pemBlock("CERTIFICATE", der), KeyPEM: pemBlock("EC PRIVATE KEY", kder)}, nil
}

// KeyPEM is the CA's key, PEM-encoded.
func (ca *CA) KeyPEM() ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(ca.Key)
	if err != nil {
		return nil, err
	}
	return pemBlock("PRIVATE KEY", der), nil
}

// Pool is a certificate pool holding the CA.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.Cert)
	return p
}

// WriteFile writes data to path atomically (a temporary file renamed
// into place), creating the directory; keys get mode 0600.
func WriteFile(path string, data []byte, mode os.FileMode) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(mode)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
	}
	return err
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

// newKey makes a certificate's key and a random serial number for it.
func newKey() (*ecdsa.PrivateKey, *big.Int, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	return key, serial, err
}

// Identities in certificates' URI SANs: a platform process (services,
// agents, the gateway calling replicas) or a user of the API. Replicas
// accept only node identities.
const (
	nodeURIPrefix = "spiffe://bmaas/node/"
	userURIPrefix = "spiffe://bmaas/user/"
)

// NodeURI is the identity of a platform process on node.
func NodeURI(node string) string { return nodeURIPrefix + node }

// ReplicaURI is the identity of a model-server replica: neither a node's
// nor a user's, so a replica's certificate opens no other port.
func ReplicaURI(node, replica string) string { return "spiffe://bmaas/replica/" + node + "/" + replica }

// UserURI is the identity of a user.
func UserURI(user string) string { return userURIPrefix + user }

// RequireNode refuses a certificate without a node identity.
func RequireNode(c *x509.Certificate) error {
	for _, u := range c.URIs {
		if len(u.String()) > len(nodeURIPrefix) && u.String()[:len(nodeURIPrefix)] == nodeURIPrefix {
			return nil
		}
	}
	return fmt.Errorf("tls: %q is not a bmaas process's certificate (no %s* identity)", c.Subject.CommonName, nodeURIPrefix)
}

// Package tlsfiles loads TLS material from files and reloads a certificate
// when its files change, so a rotated certificate (a renewed Kubernetes
// Secret, cert-manager) is used without a restart. CA bundles are read once:
// rotating a CA needs a restart.
package tlsfiles

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"sync"
	"time"
)

// CheckInterval is how often, at most, the files' modification times are
// looked at (a handshake in between uses the certificate in memory).
const CheckInterval = 5 * time.Second

// Certificate is a key pair read from files and re-read when either file
// changes. A change that does not load (half-written files during a
// rotation) keeps the previous certificate and is retried at the next check.
type Certificate struct {
	certFile, keyFile string
	interval          time.Duration

	mu        sync.Mutex
	cert      *tls.Certificate
	stamp     string
	lastCheck time.Time
}

// Load reads the key pair; it fails if the files do not hold one.
func Load(certFile, keyFile string) (*Certificate, error) {
	c := &Certificate{certFile: certFile, keyFile: keyFile, interval: CheckInterval}
	if err := c.reload(); err != nil {
		return nil, err
	}
	return c, nil
}

// SetCheckInterval changes how often the files are looked at (tests).
func (c *Certificate) SetCheckInterval(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.interval = d
}

func (c *Certificate) stampNow() (string, error) {
	var stamp string
	for _, f := range []string{c.certFile, c.keyFile} {
		fi, err := os.Stat(f)
		if err != nil {
			return "", err
		}
		stamp += fmt.Sprintf("%d/%d;", fi.ModTime().UnixNano(), fi.Size())
	}
	return stamp, nil
}

func (c *Certificate) reload() error {
	stamp, err := c.stampNow()
	if err != nil {
		return fmt.Errorf("tls: %w", err)
	}
	cert, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
	if err != nil {
		return fmt.Errorf("tls key pair %s, %s: %w", c.certFile, c.keyFile, err)
	}
	c.cert, c.stamp = &cert, stamp
	return nil
}

// Current returns the certificate, re-reading the files if they changed.
func (c *Certificate) Current() *tls.Certificate {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	if now.Sub(c.lastCheck) >= c.interval {
		c.lastCheck = now
		if stamp, err := c.stampNow(); err == nil && stamp != c.stamp {
			_ = c.reload() // on failure keep serving the previous one
		}
	}
	return c.cert
}

// GetCertificate is for tls.Config.GetCertificate (servers).
func (c *Certificate) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return c.Current(), nil
}

// GetClientCertificate is for tls.Config.GetClientCertificate (mTLS
// clients).
func (c *Certificate) GetClientCertificate(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	return c.Current(), nil
}

// CertPool reads a PEM bundle of CA certificates.
func CertPool(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("no PEM certificate in %s", path)
	}
	return pool, nil
}

// ServerConfig serves cert (TLS 1.2 or newer).
func ServerConfig(cert *Certificate) *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: cert.GetCertificate}
}

// ClientConfig is a client's TLS configuration: caFile's roots (system
// roots when empty), a client certificate when certFile is set (reloaded
// on change), and serverName to verify instead of the dialed host.
func ClientConfig(caFile, certFile, keyFile, serverName string) (*tls.Config, error) {
	out := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: serverName}
	if caFile != "" {
		pool, err := CertPool(caFile)
		if err != nil {
			return nil, fmt.Errorf("caFile: %w", err)
		}
		out.RootCAs = pool
	}
	if certFile != "" {
		cert, err := Load(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("client certificate: %w", err)
		}
		out.GetClientCertificate = cert.GetClientCertificate
	}
	return out, nil
}

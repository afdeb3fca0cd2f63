package tlsfiles

import (
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/artifactstate/artifactstate/internal/testcerts"
)

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	raw, err := os.ReadFile(from)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(to+".tmp", raw, 0o600))
	require.NoError(t, os.Rename(to+".tmp", to)) // as a Secret update does: atomically
}

// servedSerial is the serial number of the certificate a fresh TLS
// handshake gets.
func servedSerial(t *testing.T, url string, pool *x509.CertPool) string {
	t.Helper()
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, DisableKeepAlives: true}}
	resp, err := client.Get(url)
	require.NoError(t, err)
	resp.Body.Close()
	return resp.TLS.PeerCertificates[0].SerialNumber.String()
}

func TestARotatedCertificateIsServedWithoutARestart(t *testing.T) {
	t.Parallel()
	ca := testcerts.NewCA(t, "rotation")
	first, second := ca.Server("first"), ca.Server("second")
	live := testcerts.Pair{CertFile: t.TempDir() + "/tls.crt", KeyFile: t.TempDir() + "/tls.key"}
	copyFile(t, first.CertFile, live.CertFile)
	copyFile(t, first.KeyFile, live.KeyFile)

	cert, err := Load(live.CertFile, live.KeyFile)
	require.NoError(t, err)
	cert.SetCheckInterval(0)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", ServerConfig(cert))
	require.NoError(t, err)
	srv := &http.Server{Handler: http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}), ReadHeaderTimeout: time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	url := "https://" + ln.Addr().String()
	pool, err := CertPool(ca.File)
	require.NoError(t, err)
	before := servedSerial(t, url, pool)

	// A half-written rotation (new certificate, old key) keeps the old pair.
	copyFile(t, second.CertFile, live.CertFile)
	require.Equal(t, before, servedSerial(t, url, pool))
	copyFile(t, second.KeyFile, live.KeyFile)
	require.NotEqual(t, before, servedSerial(t, url, pool), "the rotated certificate is served")
}

func TestChecksAreRateLimited(t *testing.T) {
	t.Parallel()
	ca := testcerts.NewCA(t, "interval")
	p := ca.Server("a")
	cert, err := Load(p.CertFile, p.KeyFile)
	require.NoError(t, err)
	cert.SetCheckInterval(time.Hour)
	first := cert.Current()
	require.NoError(t, os.Remove(p.CertFile))
	require.Same(t, first, cert.Current(), "no file access between checks")
}

func TestClientConfig(t *testing.T) {
	t.Parallel()
	ca := testcerts.NewCA(t, "client")
	p := ca.Client("worker")
	cfg, err := ClientConfig(ca.File, p.CertFile, p.KeyFile, "temporal.internal")
	require.NoError(t, err)
	require.Equal(t, "temporal.internal", cfg.ServerName)
	require.NotNil(t, cfg.RootCAs)
	c, err := cfg.GetClientCertificate(nil)
	require.NoError(t, err)
	require.NotEmpty(t, c.Certificate)
	_, err = ClientConfig(p.CertFile+".missing", "", "", "")
	require.Error(t, err)
}

package httpserve

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/artifactstate/artifactstate/internal/config"
	"github.com/artifactstate/artifactstate/internal/testcerts"
	"github.com/artifactstate/artifactstate/internal/tlsfiles"
)

func testOptions() Options {
	o := APIOptions(config.Default().API)
	o.Address = "127.0.0.1:0"
	o.ReadHeaderTimeout = 300 * time.Millisecond
	o.ReadTimeout = time.Second
	o.MaxHeaderBytes = 4096
	return o
}

func start(t *testing.T, h http.Handler, o Options) *Server {
	t.Helper()
	s, err := New(h, o)
	require.NoError(t, err)
	require.NoError(t, s.Start())
	t.Cleanup(func() { _ = s.Shutdown(t.Context()) })
	return s
}

// trickle plays a slowloris client: it sends head, then one more chunk
// every 100 ms for up to a minute, and returns how long the server took to
// answer or close the connection, and what it answered.
func trickle(t *testing.T, addr, head, chunk string) (time.Duration, string) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer conn.Close()
	begin := time.Now()
	_, err = io.WriteString(conn, head)
	require.NoError(t, err)
	answered := make(chan string, 1)
	go func() {
		b, _ := io.ReadAll(conn) // until the server closes
		answered <- string(b)
	}()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	giveUp := time.After(time.Minute)
	for {
		select {
		case got := <-answered:
			return time.Since(begin), got
		case <-tick.C:
			_, _ = io.WriteString(conn, chunk) // fails once the server hung up
		case <-giveUp:
			t.Fatal("the server kept a slow client's connection open for a minute")
		}
	}
}

func TestSlowHeadersAreCutOff(t *testing.T) {
	t.Parallel()
	s := start(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}), testOptions())
	took, _ := trickle(t, strings.TrimPrefix(s.URL(), "http://"), "GET / HTTP/1.1\r\nHost: x\r\n", "X-Slow: 1\r\n")
	// Cut at ReadHeaderTimeout (300 ms); the bound leaves room for a busy
	// machine while staying far below the minute the client would go on.
	require.Less(t, took, 10*time.Second)
}

func TestSlowBodyIsCutOff(t *testing.T) {
	t.Parallel()
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.ReadAll(r.Body); err != nil {
			http.Error(w, "slow body", http.StatusRequestTimeout)
			return
		}
		_, _ = io.WriteString(w, "ok")
	})
	s := start(t, h, testOptions())
	took, answer := trickle(t, strings.TrimPrefix(s.URL(), "http://"),
		"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n", "x")
	require.Less(t, took, 10*time.Second)
	require.NotContains(t, answer, "ok")
}

func TestOversizedHeadersAreRefused(t *testing.T) {
	t.Parallel()
	s := start(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}), testOptions())
	req, err := http.NewRequest(http.MethodGet, s.URL(), nil)
	require.NoError(t, err)
	req.Header.Set("X-Big", strings.Repeat("a", 8192))
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusRequestHeaderFieldsTooLarge, resp.StatusCode)
}

func TestServesTLS(t *testing.T) {
	t.Parallel()
	ca := testcerts.NewCA(t, "api")
	o := testOptions()
	pair := ca.Server("api")
	o.TLS = config.ServerTLS{CertFile: pair.CertFile, KeyFile: pair.KeyFile}
	s := start(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "secure") }), o)
	require.True(t, strings.HasPrefix(s.URL(), "https://"))

	pool, err := tlsfiles.CertPool(ca.File)
	require.NoError(t, err)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := client.Get(s.URL())
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, "secure", string(body))

	// Plain HTTP on the TLS port gets nothing of the API.
	resp, err = http.Get("http://" + strings.TrimPrefix(s.URL(), "https://"))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)

	// A client that does not trust the CA refuses the server.
	_, err = (&http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: x509.NewCertPool()}}}).Get(s.URL())
	require.Error(t, err)
}

func TestRunRefusesABadCertificate(t *testing.T) {
	t.Parallel()
	o := testOptions()
	o.TLS = config.ServerTLS{CertFile: "/nonexistent/cert.pem", KeyFile: "/nonexistent/key.pem"}
	_, err := New(http.NotFoundHandler(), o)
	require.ErrorContains(t, err, "API TLS")
}
